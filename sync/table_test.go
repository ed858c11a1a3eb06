package lbsync

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// lookups returns what t holds for keys: the value, or "-" when absent.
func lookups(t *Table, keys ...string) []string {
	var got []string
	for _, k := range keys {
		v, ok := t.Lookup(k)
		if !ok {
			v = "-"
		}
		got = append(got, v)
	}
	return got
}

func TestTableStoreLookupDelete(t *testing.T) {
	c, clk := localCluster(t, "lb1")
	tb := c.Table("sticky", 100)
	tb.Store("a", "198.18.1.1:80", time.Minute)
	tb.Store("b", "198.18.1.2:80", 0) // never expires
	tb.Store("c", "198.18.1.3:80", time.Second)
	tb.Store("a", "198.18.1.4:80", time.Minute) // overwrite
	tb.Delete("b")
	tb.Delete("zz") // unknown: a tombstone only
	clk.advance(2 * time.Second)
	if diff := cmp.Diff([]string{"198.18.1.4:80", "-", "-", "-"}, lookups(tb, "a", "b", "c", "zz")); diff != "" {
		t.Errorf("lookups (-want +got):\n%s", diff)
	}
	if got := tb.Len(); got != 1 {
		t.Errorf("Len = %d after c expired and was looked up, want 1", got)
	}
	st := tb.Stats()
	if st.Tombstones != 2 {
		t.Errorf("Tombstones = %d, want 2 (b and zz)", st.Tombstones)
	}
	tb.Store("b", "198.18.1.5:80", time.Minute) // a deleted key can be stored again
	if diff := cmp.Diff([]string{"198.18.1.5:80"}, lookups(tb, "b")); diff != "" {
		t.Errorf("re-stored b (-want +got):\n%s", diff)
	}
}

func TestTableSweepExpired(t *testing.T) {
	c, clk := localCluster(t, "lb1")
	tb := c.Table("flows", 10000)
	for i := range 100 {
		ttl := time.Second
		if i%2 == 0 {
			ttl = time.Hour
		}
		tb.Store(key(i), backend(i), ttl)
	}
	tb.Delete(key(0)) // tombstone lives until key 0 would have expired
	clk.advance(2 * time.Second)
	tb.sweep(0, len(tb.shards), c.now())
	st := tb.Stats()
	if st.Len != 49 || st.Tombstones != 1 {
		t.Errorf("after sweep: Len %d, Tombstones %d; want 49, 1", st.Len, st.Tombstones)
	}
	clk.advance(2 * time.Hour)
	tb.sweep(0, len(tb.shards), c.now())
	if st := tb.Stats(); st.Len != 0 || st.Tombstones != 0 {
		t.Errorf("after everything expired: Len %d, Tombstones %d; want 0, 0", st.Len, st.Tombstones)
	}
}

// held returns which of keys t holds, without marking them as looked up.
func held(t *Table, keys ...string) []string {
	var got []string
	for _, k := range keys {
		s := &t.shards[t.shardOf(k)]
		s.mu.Lock()
		if e := s.m[k]; e != nil && !e.tomb {
			got = append(got, k)
		}
		s.mu.Unlock()
	}
	return got
}

func TestTableLRU(t *testing.T) {
	c, _ := localCluster(t, "lb1")
	tb := c.Table("sticky", 3)
	tb.Store("a", "1", time.Hour)
	tb.Store("b", "2", time.Hour)
	tb.Store("c", "3", time.Hour)
	tb.Lookup("a")                // a is marked as used
	tb.Store("d", "4", time.Hour) // a, the oldest, gets a second chance: b goes
	if diff := cmp.Diff([]string{"a", "c", "d"}, held(tb, "a", "b", "c", "d")); diff != "" {
		t.Errorf("after the first eviction (-want +got):\n%s", diff)
	}
	tb.Store("c", "5", time.Hour) // an update evicts nothing; d is now the oldest
	c.Table("sticky", 2)          // shrinking evicts at once
	if diff := cmp.Diff([]string{"a", "c"}, held(tb, "a", "b", "c", "d")); diff != "" {
		t.Errorf("after shrinking (-want +got):\n%s", diff)
	}
	if st := tb.Stats(); st.Len != 2 || st.Evictions != 2 {
		t.Errorf("Len %d, Evictions %d; want 2, 2", st.Len, st.Evictions)
	}
	if diff := cmp.Diff([]string{"1", "5"}, lookups(tb, "a", "c")); diff != "" {
		t.Errorf("values (-want +got):\n%s", diff)
	}
}

func TestTableBoundStriped(t *testing.T) {
	c, _ := localCluster(t, "lb1")
	const max = 10000 // 8 stripes
	tb := c.Table("flows", max)
	if len(tb.shards) < 2 {
		t.Fatalf("%d stripes; the test wants several", len(tb.shards))
	}
	for i := range 4 * max {
		tb.Store(key(i), backend(i), time.Hour)
		if i%1000 == 0 {
			tb.Delete(key(i - 1)) // tombstones count against the bound too
		}
	}
	st := tb.Stats()
	if st.Len+st.Tombstones != max {
		t.Errorf("Len %d + Tombstones %d, want %d", st.Len, st.Tombstones, max)
	}
	// 4*max keys and one tombstone for the unknown key(-1) were created.
	if want := uint64(4*max + 1 - max); st.Evictions != want {
		t.Errorf("Evictions = %d, want %d", st.Evictions, want)
	}
	// The most recent writes survive: eviction is LRU within a stripe.
	kept := 0
	for i := 4*max - max/2; i < 4*max; i++ {
		if _, ok := tb.Lookup(key(i)); ok {
			kept++
		}
	}
	if kept < max/2*95/100 {
		t.Errorf("%d of the %d most recent keys kept, want at least 95%%", kept, max/2)
	}
}

func TestTableRefusesLongKeys(t *testing.T) {
	c, _ := localCluster(t, "lb1")
	tb := c.Table("sticky", 10)
	tb.Store(strings.Repeat("k", maxKeyLen+1), "v", time.Hour)
	tb.Store("k", strings.Repeat("v", maxValueLen+1), time.Hour)
	if st := tb.Stats(); st.Len != 0 || st.TooLong != 2 {
		t.Errorf("Len %d, TooLong %d; want 0, 2", st.Len, st.TooLong)
	}
}

// TestMergeRule applies the same writes in every order on three nodes: all
// end with the same values and digests.
func TestMergeRule(t *testing.T) {
	type write struct {
		node    string
		version uint64
		tomb    bool
		value   string
	}
	tests := []struct {
		name   string
		writes []write
		want   string // value after all writes, "-" if deleted
	}{
		{"higher version wins", []write{{"lb1", 10, false, "x"}, {"lb2", 11, false, "y"}}, "y"},
		{"tie: greater node name wins", []write{{"lb2", 10, false, "y"}, {"lb1", 10, false, "x"}}, "y"},
		{"later deletion wins", []write{{"lb1", 10, false, "x"}, {"lb2", 12, true, ""}}, "-"},
		{"older write cannot revive a deletion", []write{{"lb2", 12, true, ""}, {"lb1", 10, false, "x"}}, "-"},
		{"newer write revives", []write{{"lb2", 12, true, ""}, {"lb1", 13, false, "z"}}, "z"},
		{"same write twice", []write{{"lb1", 10, false, "x"}, {"lb1", 10, false, "x"}}, "x"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var digests []uint64
			for _, order := range [][]int{{0, 1}, {1, 0}} {
				c, _ := localCluster(t, "lb3")
				tb := c.Table("t", 10)
				for _, i := range order {
					w := tc.writes[i]
					id, _ := c.names.id([]byte(w.node))
					tb.apply(&record{version: w.version, tomb: w.tomb, ttl: 60000, key: []byte("k"), value: []byte(w.value)}, id, c.now())
				}
				if diff := cmp.Diff([]string{tc.want}, lookups(tb, "k")); diff != "" {
					t.Errorf("order %v (-want +got):\n%s", order, diff)
				}
				digests = append(digests, tb.Digest())
			}
			if digests[0] != digests[1] {
				t.Errorf("digests differ by order: %x", digests)
			}
		})
	}
}

func TestStoreVersionsIncrease(t *testing.T) {
	c, clk := localCluster(t, "lb1")
	tb := c.Table("t", 10)
	id, _ := c.names.id([]byte("lb2"))
	// A peer's clock runs ahead: a local write must still win over its write.
	tb.apply(&record{version: uint64(clk.now()) + uint64(time.Hour), ttl: 60000, key: []byte("k"), value: []byte("peer")}, id, c.now())
	tb.Store("k", "local", time.Minute)
	if diff := cmp.Diff([]string{"local"}, lookups(tb, "k")); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

// TestStoreRefresh checks which writes are sent: new values always,
// refreshes of the same value once the members' copy has less than half
// its ttl left.
func TestStoreRefresh(t *testing.T) {
	c, clk := localCluster(t, "lb1")
	take := capture(c)
	tb := c.Table("flows", 10)
	steps := []struct {
		do   func()
		sent int
	}{
		{func() { tb.Store("k", "b1", 10*time.Second) }, 1},
		{func() { clk.advance(time.Second); tb.Store("k", "b1", 10*time.Second) }, 0},
		{func() { clk.advance(4 * time.Second); tb.Store("k", "b1", 10*time.Second) }, 0},
		{func() { clk.advance(time.Second); tb.Store("k", "b1", 10*time.Second) }, 1}, // 4 s of 10 left
		{func() { tb.Store("k", "b2", 10*time.Second) }, 1},                           // new value
		{func() { tb.Delete("k") }, 1},
		{func() { tb.Delete("k") }, 0}, // already deleted
	}
	var got, want []int
	for _, s := range steps {
		s.do()
		got = append(got, len(take()))
		want = append(want, s.sent)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("writes sent per step (-want +got):\n%s", diff)
	}
	if _, ok := tb.Lookup("k"); ok {
		t.Error("k still found after Delete")
	}
}

func TestShardsFor(t *testing.T) {
	var got []int
	for _, max := range []int{1, 1000, 2048, 10000, 100000, 1 << 20, 1 << 24} {
		got = append(got, shardsFor(max))
	}
	if diff := cmp.Diff([]int{1, 1, 2, 8, 64, 256, 256}, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestDigestIgnoresOrderAndExpiry(t *testing.T) {
	a, _ := localCluster(t, "lb1")
	b, clk := localCluster(t, "lb1")
	ta, tb := a.Table("t", 1000), b.Table("t", 1000)
	for i := range 100 {
		r := record{version: uint64(i + 1), ttl: 60000, key: []byte(key(i)), value: []byte(backend(i))}
		ta.apply(&r, 0, a.now())
		r2 := record{version: uint64(100 - i), ttl: 30000, key: []byte(key(99 - i)), value: []byte(backend(99 - i))}
		tb.apply(&r2, 0, b.now())
	}
	if da, db := ta.Digest(), tb.Digest(); da != db {
		t.Errorf("digests differ: %x %x", da, db)
	}
	clk.advance(time.Minute)
	if d := tb.Digest(); d != 0 {
		t.Errorf("digest of an expired table = %x, want 0", d)
	}
}
