package vrrp

import (
	"net/netip"
	"sync"
	"testing"
	"time"
)

// memLink is a broadcast segment for memConns.
type memLink struct {
	mu    sync.Mutex
	conns []*memConn
}

type memPacket struct {
	b        []byte
	src, dst netip.Addr
}

// memConn is an in-memory PollConn: every write reaches every other conn
// of the link.
type memConn struct {
	link *memLink
	in   chan memPacket
	wake chan struct{}
	mu   sync.Mutex
	dl   time.Time
}

func (l *memLink) conn() *memConn {
	c := &memConn{link: l, in: make(chan memPacket, 256), wake: make(chan struct{}, 1)}
	l.mu.Lock()
	l.conns = append(l.conns, c)
	l.mu.Unlock()
	return c
}

func (c *memConn) SetReadDeadline(t time.Time) { c.mu.Lock(); c.dl = t; c.mu.Unlock() }
func (c *memConn) Wake() error {
	select {
	case c.wake <- struct{}{}:
	default:
	}
	return nil
}
func (c *memConn) Close() error { return nil }

func (c *memConn) ReadFrom(b []byte) (int, netip.Addr, netip.Addr, error) {
	c.mu.Lock()
	dl := c.dl
	c.mu.Unlock()
	var timeout <-chan time.Time
	if !dl.IsZero() {
		t := time.NewTimer(time.Until(dl))
		defer t.Stop()
		timeout = t.C
	}
	select {
	case p := <-c.in:
		return copy(b, p.b), p.src, p.dst, nil
	case <-c.wake:
		return 0, netip.Addr{}, netip.Addr{}, ErrWoken
	case <-timeout:
		return 0, netip.Addr{}, netip.Addr{}, ErrTimeout
	}
}

func (c *memConn) WriteTo(b []byte, src, dst netip.Addr) error {
	c.link.mu.Lock()
	defer c.link.mu.Unlock()
	for _, o := range c.link.conns {
		if o != c {
			select {
			case o.in <- memPacket{append([]byte(nil), b...), src, dst}:
			default:
			}
		}
	}
	return nil
}

// vipHolder records ClaimVIPs/ReleaseVIPs.
type vipHolder struct {
	mu     sync.Mutex
	holds  bool
	states []State
}

func (h *vipHolder) ClaimVIPs()       { h.mu.Lock(); h.holds = true; h.mu.Unlock() }
func (h *vipHolder) ReleaseVIPs(bool) { h.mu.Lock(); h.holds = false; h.mu.Unlock() }
func (h *vipHolder) Reannounce()      {}
func (h *vipHolder) StateChanged(_, to State, _ uint8) {
	h.mu.Lock()
	h.states = append(h.states, to)
	h.mu.Unlock()
}
func (h *vipHolder) holding() bool { h.mu.Lock(); defer h.mu.Unlock(); return h.holds }

func startInstance(t *testing.T, link *memLink, addr string, prio uint8) (*Instance, *vipHolder) {
	t.Helper()
	h := &vipHolder{}
	in, err := NewInstance(InstanceConfig{Name: "web", Machine: Config{
		Version: 3, VRID: 51, Priority: prio, Interval: 20 * time.Millisecond, Preempt: true,
		LocalAddr: netip.MustParseAddr(addr), VIPs: []netip.Addr{netip.MustParseAddr("198.18.0.100")},
	}}, link.conn(), h)
	if err != nil {
		t.Fatal(err)
	}
	go in.Run()
	t.Cleanup(in.Stop)
	return in, h
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestInstanceElectionDemoteStop(t *testing.T) {
	link := &memLink{}
	a, ha := startInstance(t, link, "198.18.0.11", 150)
	b, hb := startInstance(t, link, "198.18.0.12", 100)
	waitFor(t, "a master", func() bool { return a.Status().State == StateMaster && ha.holding() })
	waitFor(t, "b backup hearing a", func() bool {
		st := b.Status()
		return st.State == StateBackup && st.MasterAddr == netip.MustParseAddr("198.18.0.11")
	})
	if hb.holding() {
		t.Fatal("backup holds the VIPs")
	}

	a.Demote()
	waitFor(t, "b master after demote", func() bool { return b.Status().State == StateMaster && hb.holding() })
	waitFor(t, "a released", func() bool { return !ha.holding() })
	if st := a.Status(); st.State != StateBackup || !st.Demoted {
		t.Errorf("demoted node: %+v", st)
	}
	a.Promote()
	waitFor(t, "a preempts back", func() bool { return a.Status().State == StateMaster && !hb.holding() })

	// Stop: the master sends priority 0 and the backup takes over.
	a.Stop()
	if ha.holding() {
		t.Error("stopped instance still holds the VIPs")
	}
	waitFor(t, "b master after a stopped", func() bool { return b.Status().State == StateMaster })
	if c := b.Status().Counters; c.PriorityZeroReceived == 0 {
		t.Errorf("backup saw no priority-0 advert: %+v", c)
	}
}
