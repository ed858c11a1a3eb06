package lbsync

import "encoding/binary"

// item is a copy of an entry taken under its stripe's lock, so that encoding
// and I/O happen without it.
type item struct {
	key, value string
	version    uint64
	expires    int64
	node       uint32
	tomb       bool
}

// collect appends copies of the unexpired entries and tombstones of stripe
// i to buf. The lock is held only while copying (a few thousand entries).
func (t *Table) collect(i int, now int64, buf []item) []item {
	s := &t.shards[i]
	s.mu.Lock()
	for e := s.lru.next; e != &s.lru; e = e.next {
		if !e.expired(now) {
			buf = append(buf, item{key: e.key, value: e.value, version: e.version, expires: e.expires, node: e.node, tomb: e.tomb})
		}
	}
	s.mu.Unlock()
	return buf
}

// ttlMillis converts an expiry to the remaining lifetime sent on the wire:
// 0 for none, else at least 1 ms. Relative lifetimes make members agree on
// expiry even when their clocks do not.
func ttlMillis(expires, now int64) uint64 {
	if expires == 0 {
		return 0
	}
	return uint64(max((expires-now)/1e6, 1))
}

// encodeStripe adds the items of one stripe to enc, calling emit each time
// enc is full. Items are added oldest first, so that a receiver's LRU order
// matches the sender's.
func encodeStripe(enc *recordEncoder, t *Table, items []item, now int64, emit func() error) error {
	for k := len(items) - 1; k >= 0; k-- {
		it := &items[k]
		enc.add(t, it.node, it.tomb, it.version, ttlMillis(it.expires, now), it.key, it.value)
		if enc.full() {
			if err := emit(); err != nil {
				return err
			}
		}
	}
	return nil
}

// Digest returns a checksum of the table's live entries (key, value, version
// and writer), independent of order, LRU position and expiry: two members
// that converged have the same digest.
func (t *Table) Digest() uint64 {
	now := t.c.now()
	var sum uint64
	for i := range t.shards {
		s := &t.shards[i]
		s.mu.Lock()
		for _, e := range s.m {
			if !e.tomb && !e.expired(now) {
				sum += entryHash(e.key, e.value, e.version, t.c.names.name(e.node))
			}
		}
		s.mu.Unlock()
	}
	return sum
}

// entryHash is FNV-1a (64 bit) over the fields, each string followed by a
// 0xff separator (a byte UTF-8 never holds).
func entryHash(key, value string, version uint64, node string) uint64 {
	const prime = 1099511628211
	h := uint64(14695981039346656037)
	str := func(s string) {
		for i := 0; i < len(s); i++ {
			h = (h ^ uint64(s[i])) * prime
		}
		h = (h ^ 0xff) * prime
	}
	str(key)
	str(value)
	var v [8]byte
	binary.LittleEndian.PutUint64(v[:], version)
	for _, b := range v {
		h = (h ^ uint64(b)) * prime
	}
	str(node)
	return h
}

// Count returns the number of live entries for which keep returns true; it
// holds one stripe's lock at a time (for lbctl sessions POOL).
func (t *Table) Count(keep func(key, value string) bool) int {
	now := t.c.now()
	n := 0
	for i := range t.shards {
		s := &t.shards[i]
		s.mu.Lock()
		for _, e := range s.m {
			if !e.tomb && !e.expired(now) && keep(e.key, e.value) {
				n++
			}
		}
		s.mu.Unlock()
	}
	return n
}
