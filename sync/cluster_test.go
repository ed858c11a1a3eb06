package lbsync

import (
	"fmt"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

func TestReplicateWrites(t *testing.T) {
	nodes := startCluster(t, 2, withKey(key1))
	a, b := nodes[0].Table("sticky", 1000), nodes[1].Table("sticky", 1000)
	a.Store("http-cookie/app/tok1", "198.18.1.1:8080", time.Hour)
	waitFor(t, "A's write on B", func() bool { v, _ := b.Lookup("http-cookie/app/tok1"); return v == "198.18.1.1:8080" })
	b.Store("http-cookie/app/tok2", "198.18.1.2:8080", time.Hour)
	waitFor(t, "B's write on A", func() bool { v, _ := a.Lookup("http-cookie/app/tok2"); return v == "198.18.1.2:8080" })
	// A table B has not named yet is created from A's message.
	nodes[0].Table("udp", 500).Store("198.18.0.50:40000", "198.18.1.3:53", time.Minute)
	waitFor(t, "a new table on B", func() bool {
		for _, tb := range nodes[1].Tables() {
			if v, _ := tb.Lookup("198.18.0.50:40000"); tb.Name() == "udp" && v == "198.18.1.3:53" {
				return true
			}
		}
		return false
	})
	if got := nodes[1].Table("udp", 0).Stats().MaxEntries; got != 500 {
		t.Errorf("table created from a peer's message: max %d, want the peer's 500", got)
	}
}

// TestConcurrentWritesConverge has two of three nodes write different
// values for the same keys at the same time: all three end identical.
func TestConcurrentWritesConverge(t *testing.T) {
	nodes := startCluster(t, 3)
	const n = 2000
	var wg sync.WaitGroup
	for w, node := range nodes[:2] {
		tb := node.Table("sticky", 10000)
		wg.Go(func() {
			for i := range n {
				tb.Store(key(i), fmt.Sprintf("198.18.1.%d:80", w+1), time.Hour)
			}
		})
	}
	wg.Wait()
	tables := make([]*Table, len(nodes))
	for i, node := range nodes {
		tables[i] = node.Table("sticky", 10000)
	}
	waitFor(t, "equal digests", func() bool {
		d := tables[0].Digest()
		return tables[0].Len() == n && tables[1].Digest() == d && tables[2].Digest() == d
	})
	for i := range n {
		want := lookups(tables[0], key(i))
		for j := 1; j < 3; j++ {
			if diff := cmp.Diff(want, lookups(tables[j], key(i))); diff != "" {
				t.Fatalf("key %d on lb%d (-lb1 +lb%d):\n%s", i, j+1, j+1, diff)
			}
		}
	}
}

func TestDeleteAndExpiryReplicate(t *testing.T) {
	nodes := startCluster(t, 2)
	a, b := nodes[0].Table("flows", 1000), nodes[1].Table("flows", 1000)
	a.Store("198.18.0.50:1", "198.18.1.1:53", time.Hour)
	a.Store("198.18.0.50:2", "198.18.1.1:53", 300*time.Millisecond)
	waitFor(t, "both entries on B", func() bool { return b.Len() == 2 })
	a.Delete("198.18.0.50:1")
	waitFor(t, "deletion on B", func() bool { _, ok := b.Lookup("198.18.0.50:1"); return !ok })
	waitFor(t, "expiry on B", func() bool { _, ok := b.Lookup("198.18.0.50:2"); return !ok })
	waitFor(t, "B empty", func() bool { return b.Len() == 0 })
	// A deletion on B travels back: a key stored on both is gone on both.
	b.Store("198.18.0.50:3", "198.18.1.2:53", time.Hour)
	waitFor(t, "B's write on A", func() bool { _, ok := a.Lookup("198.18.0.50:3"); return ok })
	b.Delete("198.18.0.50:3")
	waitFor(t, "B's deletion on A", func() bool { _, ok := a.Lookup("198.18.0.50:3"); return !ok })
}

// TestLateJoinerGetsFullState starts B after A holds 100k entries, while A
// keeps writing: B ends with A's table, deltas included.
func TestLateJoinerGetsFullState(t *testing.T) {
	const n = 100000
	a := startNode(t, "lb1")
	ta := a.Table("sticky", 1<<20)
	for i := range n {
		ta.Store(key(i), backend(i), time.Hour)
	}
	b := startNode(t, "lb2", withPeers(peerOf(a)))
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := n; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			ta.Store(key(i%(n+1000)), backend(i+1), time.Hour) // updates and new keys
		}
	})
	waitFor(t, "B's full state", func() bool { return b.Stats().FullSyncsReceived >= 1 })
	close(stop)
	wg.Wait()
	tb := b.Table("sticky", 1<<20)
	waitFor(t, "equal tables", func() bool { return tb.Len() == ta.Len() && tb.Digest() == ta.Digest() })
	if got := a.Stats().FullSyncsSent; got < 1 {
		t.Errorf("A sent %d full-state transfers", got)
	}
}

// TestWrongKeyRejected: a node with another key, and one without a key,
// never join; the cluster counts what they send.
func TestWrongKeyRejected(t *testing.T) {
	nodes := startCluster(t, 2, withKey(key1))
	a := nodes[0]
	other := startNode(t, "intruder", withKey(key2), withPeers(peerOf(a)))
	plain := startNode(t, "plain", withPeers(peerOf(a)))
	waitFor(t, "rejected gossip counted", func() bool { return a.Stats().RejectedPackets >= 2 })
	// Their sync streams are refused too.
	for _, k := range [][]byte{key2, nil} {
		conn, err := net.Dial("tcp", peerOf(a))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := dialSession(conn, k, "intruder", 1, time.Second); err == nil {
			t.Errorf("sync stream with key %x accepted", k)
		}
		conn.Close()
	}
	waitFor(t, "rejected streams counted", func() bool { return a.Stats().RejectedStreams >= 2 })
	want := []string{"lb1", "lb2"}
	for _, n := range nodes {
		var got []string
		for _, m := range n.Members() {
			got = append(got, m.Name)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("%s members (-want +got):\n%s", n.Name(), diff)
		}
	}
	for _, n := range []*Cluster{other, plain} {
		if ms := n.Members(); len(ms) != 1 {
			t.Errorf("%s joined: members %v", n.Name(), ms)
		}
	}
}

func TestMembersAndAlive(t *testing.T) {
	nodes := startCluster(t, 2)
	a, b := nodes[0], nodes[1]
	want := []Member{
		{Name: "lb1", Addr: a.Addr(), State: MemberAlive, Self: true},
		{Name: "lb2", Addr: b.Addr(), State: MemberAlive},
	}
	ignore := cmp.Options{cmpopts.IgnoreFields(Member{}, "Since"), cmpopts.EquateComparable(netip.AddrPort{})}
	if diff := cmp.Diff(want, a.Members(), ignore); diff != "" {
		t.Errorf("members (-want +got):\n%s", diff)
	}
	if !a.Alive("lb2") || a.Alive("lb9") {
		t.Errorf("Alive(lb2) = %v, Alive(lb9) = %v; want true, false", a.Alive("lb2"), a.Alive("lb9"))
	}
	if name, ok := a.AliveAt(netip.MustParseAddr("127.0.0.1")); name != "lb2" || !ok {
		t.Errorf("AliveAt(127.0.0.1) = %q, %v; want lb2, true", name, ok)
	}
	b.Close()
	waitFor(t, "lb2 left", func() bool { return !a.Alive("lb2") })
	if got := a.Members()[1].State; got != MemberLeft {
		t.Errorf("lb2 state after Close: %s, want %s", got, MemberLeft)
	}
}

// TestMalformedMessageDropped sends a good peer's stream a garbage message
// between two good ones: it is dropped and counted, the others applied.
func TestMalformedMessageDropped(t *testing.T) {
	a := startNode(t, "lb1", withKey(key1))
	conn, err := net.Dial("tcp", peerOf(a))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	s, err := dialSession(conn, key1, "lb2", 2, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	good := func(k string) []byte {
		return appendMessage(nil, &message{kind: msgRecords, tables: []tableRef{{name: []byte("t"), max: 10}},
			nodes: [][]byte{[]byte("lb2")}, records: []record{{version: 1, ttl: 60000, key: []byte(k), value: []byte("v")}}})
	}
	bad := good("x")
	bad = bad[:len(bad)-1] // truncated: the record's value is short
	for _, m := range [][]byte{good("k1"), bad, good("k2")} {
		if err := s.writeFrame(m); err != nil {
			t.Fatal(err)
		}
	}
	s.flush()
	tb := a.Table("t", 10)
	waitFor(t, "k2 applied", func() bool { _, ok := tb.Lookup("k2"); return ok })
	if got := lookups(tb, "k1", "x", "k2"); !cmp.Equal(got, []string{"v", "-", "v"}) {
		t.Errorf("lookups %v, want [v - v]", got)
	}
	if got := a.Stats().DroppedMessages; got != 1 {
		t.Errorf("DroppedMessages = %d, want 1", got)
	}
}
