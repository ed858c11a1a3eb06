package lbsync

import (
	"strings"
	"sync"
)

// entry is one key of a table. A deleted key stays as a tombstone until its
// expiry, so that an older write arriving late (from a full-state transfer
// or a slow peer) cannot bring it back. 80 bytes with its size class.
type entry struct {
	key, value string // value is empty in a tombstone
	prev, next *entry // LRU list of the shard; the shard's sentinel closes it
	version    uint64 // writer's clock (unix ns, or one more than the previous version)
	expires    int64  // unix ns; 0: never
	sent       int64  // expiry last replicated by this node; see Table.Store
	node       uint32 // writer, an id in Cluster.names
	tomb       bool
	ref        bool // used since it last moved to the front: spared once by eviction
}

func (e *entry) expired(now int64) bool { return e.expires != 0 && now >= e.expires }

// maxIntern bounds the distinct values a shard shares between its entries.
// Values are backend addresses, a few per pool, so a few dozen suffice.
const maxIntern = 64

// shard is one lock stripe of a table: a map, its LRU list (newest first,
// see victim) and the values its entries share.
type shard struct {
	mu     sync.Mutex        // guards all fields below
	m      map[string]*entry // keys alias entry.key
	lru    entry             // sentinel: lru.next is the most recent
	intern map[string]string
	_      [40]byte // keeps a shard's lock off its neighbour's busy cache lines
}

func (s *shard) init() {
	s.m = map[string]*entry{}
	s.intern = map[string]string{}
	s.lru.next, s.lru.prev = &s.lru, &s.lru
}

func (s *shard) pushFront(e *entry) {
	e.prev, e.next = &s.lru, s.lru.next
	s.lru.next.prev = e
	s.lru.next = e
}

func (s *shard) unlink(e *entry) {
	e.prev.next, e.next.prev = e.next, e.prev
	e.prev, e.next = nil, nil
}

func (s *shard) moveFront(e *entry) {
	e.ref = false
	if s.lru.next != e {
		s.unlink(e)
		s.pushFront(e)
	}
}

// victim returns the entry to evict: the oldest one not used since it was
// added or last spared. Used entries met on the way get a second chance:
// they move to the front, unmarked. This is the CLOCK approximation of LRU;
// it spares Lookup and Store, the hot path, from relinking entries (and
// their neighbours' cache lines). s is not empty.
func (s *shard) victim() *entry {
	for {
		e := s.lru.prev
		if !e.ref {
			return e
		}
		s.moveFront(e)
	}
}

// internString returns the shard's copy of v, keeping one if there is room.
// A caller's string is copied so that the table never pins a larger buffer.
func (s *shard) internString(v string) string {
	if x, ok := s.intern[v]; ok {
		return x
	}
	x := strings.Clone(v)
	if len(s.intern) < maxIntern {
		s.intern[x] = x
	}
	return x
}

// internBytes is internString for a decoded value.
func (s *shard) internBytes(v []byte) string {
	if x, ok := s.intern[string(v)]; ok {
		return x
	}
	x := string(v)
	if len(s.intern) < maxIntern {
		s.intern[x] = x
	}
	return x
}
