package proxy

import (
	"net/netip"
	"sync"
	"time"
)

// Affinity maps a client key (a UDP client's address, a source IP, a
// sticky cookie) to the address of the backend that serves it. The proxy
// consults it before balancing and records every new choice, so a client
// keeps its backend; sync replicates the table across the cluster so that
// it keeps it after a failover too. Implementations must be safe for
// concurrent use and must not block.
type Affinity interface {
	Lookup(key string) (backend string, ok bool)
	Store(key, backend string, ttl time.Duration)
	Delete(key string)
}

// LocalAffinity is an Affinity held in this process only, with expiry.
type LocalAffinity struct {
	mu      sync.Mutex // guards entries
	entries map[string]affinityEntry
	now     func() time.Time
	// sweepAt is the size at which Store sweeps expired entries: twice the
	// size after the last sweep, so sweeping costs O(1) per Store amortised.
	sweepAt int
}

type affinityEntry struct {
	backend string
	expires time.Time
}

// NewLocalAffinity returns an empty table.
func NewLocalAffinity() *LocalAffinity {
	return &LocalAffinity{entries: make(map[string]affinityEntry), now: time.Now}
}

// Lookup returns the unexpired backend stored for key.
func (a *LocalAffinity) Lookup(key string) (string, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	e, ok := a.entries[key]
	if !ok {
		return "", false
	}
	if a.now().After(e.expires) {
		delete(a.entries, key)
		return "", false
	}
	return e.backend, true
}

// Store records backend for key until ttl passes.
func (a *LocalAffinity) Store(key, backend string, ttl time.Duration) {
	a.mu.Lock()
	a.entries[key] = affinityEntry{backend: backend, expires: a.now().Add(ttl)}
	if len(a.entries) >= a.sweepAt {
		a.sweepLocked()
		a.sweepAt = max(2*len(a.entries), 1024)
	}
	a.mu.Unlock()
}

// Delete forgets key.
func (a *LocalAffinity) Delete(key string) {
	a.mu.Lock()
	delete(a.entries, key)
	a.mu.Unlock()
}

// Len returns the number of entries, expired ones included until looked up
// or swept.
func (a *LocalAffinity) Len() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.entries)
}

// Sweep removes expired entries.
func (a *LocalAffinity) Sweep() {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.sweepLocked()
}

func (a *LocalAffinity) sweepLocked() {
	now := a.now()
	for k, e := range a.entries {
		if now.After(e.expires) {
			delete(a.entries, k)
		}
	}
}

// SourceIPKey is the Affinity key of a client address's persistence in a
// pool (`[pool.sticky] source_ip = true`). sync keys its source-IP table by
// the same form.
func SourceIPKey(pool string, ip netip.Addr) string {
	return "source-ip/" + pool + "/" + ip.Unmap().String()
}
