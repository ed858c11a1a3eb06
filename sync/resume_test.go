package lbsync

import (
	"net"
	"testing"
	"time"
)

// breakStreams cuts every sync stream c receives, as a network fault
// would, without memberlist noticing.
func breakStreams(c *Cluster) int {
	c.mu.Lock()
	conns := make([]net.Conn, 0, len(c.inbound))
	for conn := range c.inbound {
		conns = append(conns, conn)
	}
	c.mu.Unlock()
	for _, conn := range conns {
		conn.Close()
	}
	return len(conns)
}

// TestStreamResumes: a broken stream to a member that is still the same
// process resumes: writes made while it was down arrive, and nothing is
// sent again in full.
func TestStreamResumes(t *testing.T) {
	n := startCluster(t, 2, withKey(key1))
	ta, tb := n[0].Table(TableSticky, 1<<16), n[1].Table(TableSticky, 1<<16)
	for i := range 10000 {
		ta.Store(key(i), backend(i), time.Hour)
	}
	waitFor(t, "the first writes", func() bool { return tb.Len() == 10000 })
	before := n[1].Stats()
	if breakStreams(n[1]) == 0 {
		t.Fatal("no stream to break")
	}
	for i := 10000; i < 11000; i++ {
		ta.Store(key(i), backend(i), time.Hour)
	}
	waitFor(t, "the writes made across the break", func() bool { return tb.Len() == 11000 })
	waitFor(t, "the resumed stream", func() bool { return n[0].Stats().Resumes >= 1 })
	after := n[1].Stats()
	if got := after.FullSyncsReceived - before.FullSyncsReceived; got != 0 {
		t.Errorf("%d full-state transfers after the break, want 0 (resumed)", got)
	}
	// The new writes, some perhaps twice (written before the break, not
	// yet acknowledged); the 10,000 before it not again.
	if got := after.RecordsReceived - before.RecordsReceived; got > 3000 {
		t.Errorf("%d records received after the break for 1000 new writes: resent in full?", got)
	}
}

// TestFullTransferResumes: a full-state transfer cut halfway continues
// from the stripes the member acknowledged, instead of from the start.
func TestFullTransferResumes(t *testing.T) {
	const entries = 300_000
	a := startNode(t, "lb1", withKey(key1))
	ta := a.Table(TableSticky, 1<<20)
	for i := range entries {
		ta.Store(key(i), backend(i), time.Hour)
	}
	b := startNode(t, "lb2", withKey(key1), withPeers(peerOf(a)))
	tb := b.Table(TableSticky, 0)
	waitFor(t, "a part of the transfer", func() bool { return tb.Len() >= entries/3 })
	broke := breakStreams(b)
	if broke == 0 {
		t.Fatal("no stream to break")
	}
	waitFor(t, "the whole table", func() bool { return tb.Len() == entries })
	st := b.Stats()
	t.Logf("stream broken at %d+ entries, %d records received in all", entries/3, st.RecordsReceived)
	if got := a.Stats().Resumes; got < 1 {
		t.Errorf("%d resumes: the transfer was not resumed", got)
	}
	if st.RecordsReceived >= entries+entries/3 {
		t.Errorf("%d records received for %d entries: the transfer started over", st.RecordsReceived, entries)
	}
	if got := a.Stats().FullSyncsSent; got != 1 {
		t.Errorf("%d full-state transfers completed, want 1", got)
	}
}

// TestRestartedMemberGetsFullState: a member that restarted (a new
// incarnation) is not resumed: it gets the full state.
func TestRestartedMemberGetsFullState(t *testing.T) {
	a := startNode(t, "lb1", withKey(key1))
	ta := a.Table(TableSticky, 1<<16)
	for i := range 500 {
		ta.Store(key(i), backend(i), time.Hour)
	}
	b := startNode(t, "lb2", withKey(key1), withPeers(peerOf(a)))
	waitFor(t, "the first transfer", func() bool { return b.Table(TableSticky, 0).Len() == 500 })
	addr := peerOf(b)
	b.Close()
	b2 := startNode(t, "lb2", withKey(key1), withPeers(peerOf(a)), func(c *Config) { c.Bind = addr })
	waitFor(t, "the restarted member's transfer", func() bool { return b2.Table(TableSticky, 0).Len() == 500 })
	if got := b2.Stats().FullSyncsReceived; got < 1 {
		t.Errorf("restarted member received %d full-state transfers", got)
	}
}
