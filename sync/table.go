package lbsync

import (
	"hash/maphash"
	"math/bits"
	"strings"
	"sync/atomic"
	"time"
)

// tombGrace is how long a tombstone outlives the entry it deleted, so that a
// copy whose expiry was computed a little later on a peer dies first.
const tombGrace = int64(5 * time.Second)

// maxTTL caps a received lifetime (ms) so that expiries cannot overflow.
const maxTTL = uint64(100 * 365 * 24 * time.Hour / time.Millisecond)

// Table is a replicated map from string keys to string values with expiry,
// bounded to max_entries by evicting the least recently used keys. Every
// Store and Delete is sent to all members at once; a write from a peer is
// applied when it is newer (higher version, then greater node name), so all
// members converge on the same value. It implements the method set of
// proxy.Affinity. All methods are safe for concurrent use and never wait for
// the network.
//
// The table is split in lock stripes (shards), each with its own LRU list,
// approximated the CLOCK way: new keys enter at the front, lookups and
// writes only mark a key used, and eviction gives used keys a second chance
// at the front. A write that
// takes the table over its bound evicts from its own stripe, so eviction is
// LRU within a stripe and the bound holds for the whole table.
type Table struct {
	c      *Cluster
	name   string
	max    atomic.Int64
	seed   maphash.Seed
	shards []shard
	mask   uint64

	live      atomic.Int64 // entries that are not tombstones (expired ones until swept)
	total     atomic.Int64 // entries and tombstones: what max bounds
	evictions atomic.Uint64
	tooLong   atomic.Uint64
}

// TableStats are a table's counters.
type TableStats struct {
	Name       string
	Len        int    // entries, expired ones included until swept
	Tombstones int    // deleted keys remembered until they expire
	MaxEntries int    // bound on Len+Tombstones
	Evictions  uint64 // entries and tombstones dropped to keep the bound
	TooLong    uint64 // writes refused: key or value over 4096 bytes
}

// shardsFor returns the number of lock stripes for a table of max entries:
// one per 1024 entries, a power of two between 1 and 256. Small tables keep
// one LRU list; large ones spread their locks.
func shardsFor(max int) int {
	n := max / 1024
	if n <= 1 {
		return 1
	}
	return min(1<<(bits.Len(uint(n))-1), 256)
}

func newTable(c *Cluster, name string, max int) *Table {
	n := shardsFor(max)
	t := &Table{c: c, name: name, seed: maphash.MakeSeed(), shards: make([]shard, n), mask: uint64(n - 1)}
	t.max.Store(int64(max))
	for i := range t.shards {
		t.shards[i].init()
	}
	return t
}

// Name returns the table's name, the same on every member.
func (t *Table) Name() string { return t.name }

func (t *Table) shardOf(key string) int { return int(maphash.String(t.seed, key) & t.mask) }

func (t *Table) shardOfBytes(key []byte) int { return int(maphash.Bytes(t.seed, key) & t.mask) }

// Lookup returns the value stored for key, unless it expired or was deleted.
// A hit marks the key used, which spares it from the next eviction that
// reaches it.
func (t *Table) Lookup(key string) (value string, ok bool) {
	now := t.c.now()
	s := &t.shards[t.shardOf(key)]
	s.mu.Lock()
	e := s.m[key]
	switch {
	case e == nil || e.tomb:
	case e.expired(now):
		t.removeLocked(s, e)
	default:
		e.ref = true
		value, ok = e.value, true
	}
	s.mu.Unlock()
	return value, ok
}

// Store records value for key until ttl passes (ttl <= 0: until evicted or
// deleted) and sends the write to every member. Storing the value a key
// already holds only extends its expiry; that is sent again once the expiry
// the members know has less than half of ttl left, so a refresh on every
// request costs at most two messages per ttl. Keys or values longer than
// 4096 bytes are refused and counted (TableStats.TooLong).
func (t *Table) Store(key, value string, ttl time.Duration) {
	if len(key) > maxKeyLen || len(value) > maxValueLen {
		t.tooLong.Add(1)
		return
	}
	now := t.c.now()
	var exp int64
	if ttl > 0 {
		exp = now + int64(ttl)
	}
	i := t.shardOf(key)
	s := &t.shards[i]
	s.mu.Lock()
	e := s.m[key]
	if e == nil {
		e = &entry{key: strings.Clone(key), tomb: true}
		s.m[e.key] = e
		s.pushFront(e)
		t.total.Add(1)
	} else {
		e.ref = true
	}
	if !e.tomb && e.node == 0 && e.value == value && refreshed(e.sent, exp, now) {
		e.expires = exp // the members' copy lives long enough
		s.mu.Unlock()
		return
	}
	if e.tomb {
		t.live.Add(1)
	}
	e.version = max(uint64(now), e.version+1)
	e.node, e.tomb, e.expires, e.sent = 0, false, exp, exp
	e.value = s.internString(value)
	d := delta{t: t, key: e.key, value: e.value, version: e.version, expires: exp}
	s.mu.Unlock()
	t.c.publish(&d)
	t.bound(i)
}

// refreshed reports whether a copy replicated with expiry sent still covers
// half of a refresh to exp.
func refreshed(sent, exp, now int64) bool {
	if exp == 0 || sent == 0 {
		return exp == sent
	}
	return sent-now >= (exp-now)/2
}

// Delete removes key here and on every member. The key stays as a tombstone
// until the deleted entry would have expired (or TombstoneTTL for keys that
// never expire or are unknown here), so that no older write revives it.
func (t *Table) Delete(key string) {
	if len(key) > maxKeyLen {
		t.tooLong.Add(1)
		return
	}
	now := t.c.now()
	i := t.shardOf(key)
	s := &t.shards[i]
	s.mu.Lock()
	e := s.m[key]
	switch {
	case e == nil:
		e = &entry{key: strings.Clone(key)}
		s.m[e.key] = e
		s.pushFront(e)
		t.total.Add(1)
	case e.tomb:
		s.mu.Unlock()
		return
	default:
		e.ref = true
		t.live.Add(-1)
	}
	tombExp := now + t.c.tombTTL
	if e.expires != 0 {
		tombExp = max(e.expires, now) + tombGrace
	}
	e.version = max(uint64(now), e.version+1)
	e.node, e.tomb, e.value, e.expires, e.sent = 0, true, "", tombExp, 0
	d := delta{t: t, key: e.key, version: e.version, expires: tombExp, tomb: true}
	s.mu.Unlock()
	t.c.publish(&d)
	t.bound(i)
}

// apply merges a write received from a peer (or read from a snapshot): it
// wins if it is newer than the local entry. ttl is in milliseconds (0: none).
// It reports whether the write was applied.
func (t *Table) apply(r *record, node uint32, now int64) bool {
	ttl := min(r.ttl, maxTTL)
	var exp int64
	switch {
	case ttl != 0:
		exp = now + int64(ttl)*int64(time.Millisecond)
	case r.tomb:
		exp = now + t.c.tombTTL
	}
	i := t.shardOfBytes(r.key)
	s := &t.shards[i]
	s.mu.Lock()
	e := s.m[string(r.key)]
	if e != nil && !t.c.names.newer(r.version, node, e.version, e.node) {
		s.mu.Unlock()
		return false
	}
	if e == nil {
		e = &entry{key: string(r.key), tomb: true}
		s.m[e.key] = e
		s.pushFront(e)
		t.total.Add(1)
	} else {
		e.ref = true
	}
	switch {
	case e.tomb && !r.tomb:
		t.live.Add(1)
	case !e.tomb && r.tomb:
		t.live.Add(-1)
	}
	e.version, e.node, e.tomb, e.expires, e.sent = r.version, node, r.tomb, exp, 0
	if r.tomb {
		e.value = ""
	} else {
		e.value = s.internBytes(r.value)
	}
	s.mu.Unlock()
	t.bound(i)
	return true
}

// removeLocked drops e from s, whose lock is held.
func (t *Table) removeLocked(s *shard, e *entry) {
	delete(s.m, e.key)
	s.unlink(e)
	t.total.Add(-1)
	if !e.tomb {
		t.live.Add(-1)
	}
}

// bound evicts least recently used entries while the table is over its
// bound, starting with stripe i (the one just written). Stripes holding a
// single entry are spared on a first pass, so that a fresh write is not
// its own victim.
func (t *Table) bound(i int) {
	for t.total.Load() > t.max.Load() {
		if !t.evictOne(i, 2) && !t.evictOne(i, 1) {
			return
		}
	}
}

// evictOne drops the oldest entry of the first stripe from i holding at
// least min entries.
func (t *Table) evictOne(i, min int) bool {
	for n := range len(t.shards) {
		s := &t.shards[(i+n)&int(t.mask)]
		s.mu.Lock()
		if len(s.m) >= min {
			t.removeLocked(s, s.victim())
			s.mu.Unlock()
			t.evictions.Add(1)
			return true
		}
		s.mu.Unlock()
	}
	return false
}

// reserve sizes the maps of empty stripes for n entries in all, at most
// the bound: a node receiving a full state then builds its maps without
// growing them.
func (t *Table) reserve(n uint64) {
	n = min(n, uint64(t.max.Load()))
	per := int(n/uint64(len(t.shards))) * 17 / 16
	if per < 64 {
		return
	}
	for i := range t.shards {
		s := &t.shards[i]
		s.mu.Lock()
		if len(s.m) == 0 {
			s.m = make(map[string]*entry, per)
		}
		s.mu.Unlock()
	}
}

// setMax changes the bound, evicting at once if the table is over it.
func (t *Table) setMax(max int) {
	t.max.Store(int64(max))
	t.bound(0)
}

// sweep removes the expired entries and tombstones of stripes [from, from+n).
func (t *Table) sweep(from, n int, now int64) (removed int) {
	for k := range n {
		s := &t.shards[(from+k)&int(t.mask)]
		s.mu.Lock()
		for _, e := range s.m {
			if e.expired(now) {
				t.removeLocked(s, e)
				removed++
			}
		}
		s.mu.Unlock()
	}
	return removed
}

// Len returns the number of entries, expired ones included until they are
// looked up or swept (every few seconds).
func (t *Table) Len() int { return int(t.live.Load()) }

// Stats returns the table's counters.
func (t *Table) Stats() TableStats {
	live, total := t.live.Load(), t.total.Load()
	return TableStats{Name: t.name, Len: int(live), Tombstones: int(total - live), MaxEntries: int(t.max.Load()),
		Evictions: t.evictions.Load(), TooLong: t.tooLong.Load()}
}
