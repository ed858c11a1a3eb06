package lbsync

import (
	"net/netip"
	"strings"
	"time"
)

// The tables of the proxy's uses, by name (the same on every member).
const (
	TableSticky   = "sticky"    // CookieKey and header affinity keys → backend address
	TableSourceIP = "source-ip" // SourceIPKey → backend address
	TableFlows    = "udp-flows" // FlowKey → backend address
)

// Key prefixes of the typed uses; a flow key has none.
const (
	cookiePrefix   = "http-cookie/"
	headerPrefix   = "http-header/" // [pool.sticky] header: POOL/hash of the value
	sourceIPPrefix = "source-ip/"
)

// CookieKey is the key of a sticky cookie's token in pool, as the HTTP
// proxy writes it.
func CookieKey(pool, token string) string { return cookiePrefix + pool + "/" + token }

// SourceIPKey is the key of a client address's persistence in pool.
func SourceIPKey(pool string, ip netip.Addr) string {
	return sourceIPPrefix + pool + "/" + ip.Unmap().String()
}

// InPool reports whether key is a cookie or source-IP key of pool. A UDP
// flow key names no pool: its backend does.
func InPool(key, pool string) bool {
	for _, p := range [...]string{cookiePrefix, headerPrefix, sourceIPPrefix} {
		if rest, ok := strings.CutPrefix(key, p); ok {
			return strings.HasPrefix(rest, pool+"/")
		}
	}
	return false
}

// FlowKey is the key of a UDP flow: the client's address and port, as the
// UDP proxy writes it.
func FlowKey(client netip.AddrPort) string { return client.String() }

// Uses holds the three typed tables and is itself an Affinity that sends
// each key to its table by its form, so that one value serves a proxy that
// mixes uses. Each table has its own bound.
type Uses struct {
	Sticky   *Table
	SourceIP *Table
	Flows    *Table
}

// Uses returns the typed tables with the given bounds (0 keeps a table's
// bound, see Table).
func (c *Cluster) Uses(maxSticky, maxSourceIP, maxFlows int) *Uses {
	return &Uses{Sticky: c.Table(TableSticky, maxSticky), SourceIP: c.Table(TableSourceIP, maxSourceIP),
		Flows: c.Table(TableFlows, maxFlows)}
}

func (u *Uses) table(key string) *Table {
	switch {
	case strings.HasPrefix(key, cookiePrefix), strings.HasPrefix(key, headerPrefix):
		return u.Sticky
	case strings.HasPrefix(key, sourceIPPrefix):
		return u.SourceIP
	}
	return u.Flows
}

// Lookup looks key up in its table.
func (u *Uses) Lookup(key string) (string, bool) { return u.table(key).Lookup(key) }

// Store stores key in its table.
func (u *Uses) Store(key, backend string, ttl time.Duration) { u.table(key).Store(key, backend, ttl) }

// Delete deletes key from its table.
func (u *Uses) Delete(key string) { u.table(key).Delete(key) }
