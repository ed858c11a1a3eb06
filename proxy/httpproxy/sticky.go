package httpproxy

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"lbd/config"
	"lbd/proxy"
)

// affinityRule is [pool.sticky] source_ip = true or header = NAME for an
// http pool: a request whose key (the client's address, or the value of
// the header) is in the Affinity table goes to the backend stored there
// while it is usable; otherwise the pool picks one, and the choice is
// stored. Keys are what sync replicates: proxy.SourceIPKey, as tcp
// frontends write it, and "http-header/POOL/HASH", where HASH stands for
// the header's value without revealing it.
type affinityRule struct {
	pool   string
	header string // lower case; "": source_ip
	ttl    time.Duration
	aff    proxy.Affinity
}

func newAffinityRule(pool string, s config.Sticky, aff proxy.Affinity) *affinityRule {
	if !s.SourceIP && s.Header == "" {
		return nil
	}
	ttl := s.TTL.D()
	if ttl <= 0 {
		ttl = time.Hour
	}
	return &affinityRule{pool: pool, header: strings.ToLower(s.Header), ttl: ttl, aff: aff}
}

// HeaderAffinityKey is the Affinity key of a header value's persistence
// in pool (`[pool.sticky] header = NAME`): a keyless hash, the same on
// every node, so that sync can replicate it.
func HeaderAffinityKey(pool string, value []byte) string {
	sum := sha256.Sum256(value)
	return "http-header/" + pool + "/" + base64.RawURLEncoding.EncodeToString(sum[:16])
}

// key returns the request's Affinity key; "" when it has none (no such
// header).
func (a *affinityRule) key(v reqView) string {
	if a.header == "" {
		if ip := v.clientAddr(); ip.IsValid() {
			return proxy.SourceIPKey(a.pool, ip)
		}
		return ""
	}
	val, ok := v.header(a.header)
	if !ok || len(val) == 0 {
		return ""
	}
	return HeaderAffinityKey(a.pool, val)
}

// sticky is [pool.sticky] cookie = NAME for one pool: the proxy sets the
// cookie to an opaque token standing for the backend that served the
// client, and sends the client's next requests to that backend while it
// is usable (HAProxy's "cookie insert").
//
// The token is a keyed hash of the pool and backend address, so it reveals
// nothing about the backend. It maps back to the address through the
// Affinity table, which sync replicates: another node, with another key,
// still honours the tokens this node issued. Entries live for the
// sticky ttl and are stored again while in use.
type sticky struct {
	pool   string
	cookie string
	ttl    time.Duration
	aff    proxy.Affinity
	secret *[32]byte

	mu     sync.RWMutex // guards the maps
	byTok  map[string]*stickyEntry
	byAddr map[string]*stickyEntry
}

type stickyEntry struct {
	token  string
	addr   string
	stored atomic.Int64 // unix nanoseconds of the last Affinity.Store
}

func newSticky(pool, cookie string, ttl time.Duration, aff proxy.Affinity, secret *[32]byte) *sticky {
	if ttl <= 0 {
		ttl = time.Hour
	}
	return &sticky{pool: pool, cookie: cookie, ttl: ttl, aff: aff, secret: secret,
		byTok: make(map[string]*stickyEntry), byAddr: make(map[string]*stickyEntry)}
}

func (s *sticky) affKey(token string) string { return "http-cookie/" + s.pool + "/" + token }

// lookup returns the backend address a token stands for.
func (s *sticky) lookup(tok []byte) (string, bool) {
	s.mu.RLock()
	e := s.byTok[string(tok)]
	s.mu.RUnlock()
	if e != nil {
		s.refresh(e)
		return e.addr, true
	}
	if len(tok) == 0 || len(tok) > 64 {
		return "", false
	}
	addr, ok := s.aff.Lookup(s.affKey(string(tok)))
	if !ok {
		return "", false
	}
	e = &stickyEntry{token: string(tok), addr: addr}
	e.stored.Store(time.Now().UnixNano())
	s.mu.Lock()
	if len(s.byTok) < 4096 { // tokens learnt from other nodes: a few per backend
		s.byTok[e.token] = e
	}
	s.mu.Unlock()
	return addr, true
}

// token returns the token for the backend at addr, issuing it (and storing
// it in the Affinity table) the first time.
func (s *sticky) token(addr string) string {
	s.mu.RLock()
	e := s.byAddr[addr]
	s.mu.RUnlock()
	if e != nil {
		s.refresh(e)
		return e.token
	}
	m := hmac.New(sha256.New, s.secret[:])
	m.Write([]byte(s.pool))
	m.Write([]byte{0})
	m.Write([]byte(addr))
	tok := base64.RawURLEncoding.EncodeToString(m.Sum(nil)[:12])
	e = &stickyEntry{token: tok, addr: addr}
	s.mu.Lock()
	if old := s.byAddr[addr]; old != nil {
		e = old
	} else {
		s.byAddr[addr] = e
		s.byTok[tok] = e
	}
	s.mu.Unlock()
	s.store(e)
	return e.token
}

// refresh stores e again when half its ttl has passed since it was stored.
func (s *sticky) refresh(e *stickyEntry) {
	if time.Now().UnixNano()-e.stored.Load() > int64(s.ttl/2) {
		s.store(e)
	}
}

func (s *sticky) store(e *stickyEntry) {
	e.stored.Store(time.Now().UnixNano())
	s.aff.Store(s.affKey(e.token), e.addr, s.ttl)
}

// appendSetCookie appends the Set-Cookie field for token (RFC 6265 §4.1).
func (s *sticky) appendSetCookie(dst []byte, token string, secure bool) []byte {
	dst = append(dst, "Set-Cookie: "...)
	dst = append(dst, s.cookie...)
	dst = append(dst, '=')
	dst = append(dst, token...)
	dst = append(dst, "; Path=/; HttpOnly"...)
	if secure {
		dst = append(dst, "; Secure"...)
	}
	return append(dst, "\r\n"...)
}
