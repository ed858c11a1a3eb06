package lbsync

import (
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// TestPeersShowLag: each node reports its stream to the other as
// streaming, with every write it made applied there (pending 0), a lag
// that was measured, and the records it sent.
func TestPeersShowLag(t *testing.T) {
	n := startCluster(t, 2, withKey([]byte("0123456789abcdef0123456789abcdef")))
	const writes = 5000
	tab := n[0].Table(TableSticky, 0)
	for i := range writes {
		tab.Store(key(i), backend(i), time.Hour)
	}
	waitFor(t, "writes on lb2", func() bool { return n[1].Table(TableSticky, 0).Stats().Len == writes })
	waitFor(t, "lb2 acknowledges every write", func() bool {
		p := n[0].Peers()
		return len(p) == 1 && p[0].Pending == 0 && p[0].RecordsSent >= writes
	})
	p := n[0].Peers()[0]
	if p.Name != "lb2" || p.Addr != peerOf(n[1]) || p.State != PeerStreaming {
		t.Errorf("lb1's peer = %+v, want lb2 at %s streaming", p, peerOf(n[1]))
	}
	if p.Lag <= 0 || p.Lag > 10*time.Second || p.LastAck.IsZero() {
		t.Errorf("lag %v, last ack %v: want a measured lag", p.Lag, p.LastAck)
	}
	if q := n[1].Peers(); len(q) != 1 || q[0].Name != "lb1" || q[0].State != PeerStreaming || q[0].Pending != 0 {
		t.Errorf("lb2's peers = %+v", q)
	}
	// A peer that leaves is no longer listed.
	n[1].Close()
	waitFor(t, "lb1 drops the peer", func() bool { return len(n[0].Peers()) == 0 })
}

// TestProgressAccounting follows the marks of a stream on a made-up clock.
func TestProgressAccounting(t *testing.T) {
	ms := int64(time.Millisecond)
	var p progress
	p.init(0)
	p.connected(1 * ms)
	p.wrote(2, 100, 1*ms, false) // full state: frames 2 and 3
	p.wrote(3, 50, 2*ms, false)
	p.streaming(3 * ms)
	p.queue(7)
	p.queue(3)
	p.wrote(4, 7, 4*ms, true)
	type view struct {
		State        string
		Sent, Pend   uint64
		Lag          time.Duration
		LastAckIsSet bool
	}
	get := func(now int64) view {
		v := p.peer(now)
		return view{v.State, v.RecordsSent, v.Pending, v.Lag, !v.LastAck.IsZero()}
	}
	steps := []struct {
		name string
		do   func()
		now  int64
		want view
	}{
		{"nothing acknowledged", func() {}, 5 * ms, view{PeerStreaming, 157, 160, 4 * time.Millisecond, false}},
		{"frames up to 3", func() { p.ack(3, 6*ms) }, 6 * ms, view{PeerStreaming, 157, 10, 5 * time.Millisecond, true}},
		{"an ack of nothing new", func() { p.ack(3, 7*ms) }, 7 * ms, view{PeerStreaming, 157, 10, 5 * time.Millisecond, true}},
		{"frame 4", func() { p.ack(4, 8*ms) }, 8 * ms, view{PeerStreaming, 157, 3, 4 * time.Millisecond, true}},
		{"a stuck write shows as lag", func() { p.wrote(5, 3, 9*ms, true) }, 109 * ms, view{PeerStreaming, 160, 3, 100 * time.Millisecond, true}},
		{"disconnected", func() { p.disconnected(110 * ms) }, 110 * ms, view{PeerConnecting, 0, 0, 4 * time.Millisecond, true}},
	}
	for _, s := range steps {
		s.do()
		if diff := cmp.Diff(s.want, get(s.now)); diff != "" {
			t.Errorf("%s (-want +got):\n%s", s.name, diff)
		}
	}
	// The marks stay bounded however long the member is silent.
	for i := range 3 * maxMarks {
		p.wrote(uint64(10+i), 1, int64(i), false)
	}
	if len(p.marks) > maxMarks {
		t.Errorf("%d marks kept, want at most %d", len(p.marks), maxMarks)
	}
	p.ack(uint64(10+3*maxMarks), 3*maxMarks)
	if got := p.peer(0); got.Pending != 0 || fmt.Sprint(got.Lag) != fmt.Sprint(time.Duration(3*maxMarks)) {
		t.Errorf("after acknowledging all: %+v", got)
	}
}
