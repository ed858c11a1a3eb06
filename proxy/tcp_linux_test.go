//go:build linux

package proxy

import (
	"net"
	"testing"
	"time"

	"lbd/config"
	"lbd/lab"
)

// blackhole returns a loopback address whose SYNs go unanswered: a
// listening socket with a backlog of 0 that never accepts, its queue
// filled by one connection, so the kernel drops every further SYN (the
// client retransmits, as towards a host that is down).
func blackhole(t *testing.T) string {
	t.Helper()
	addr := lab.NeverAccepts(t)
	filler, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { filler.Close() })
	if c, err := net.DialTimeout("tcp", addr, 100*time.Millisecond); err == nil {
		c.Close()
		t.Fatal("the blackhole answered a second connection")
	}
	return addr
}

func TestTCPConnectTimeoutRetried(t *testing.T) {
	a := startBackend(t, "a")
	hole := blackhole(t)
	pc := poolConfig("round_robin", hole, a.addr())
	pc.ConnectTimeout = dur(100 * time.Millisecond)
	f := startFrontend(t, config.Frontend{}, pc)
	for i := 0; i < 4; i++ {
		start := time.Now()
		if got := hello(t, f.Addr().String()); got != "a" {
			t.Fatalf("connection %d reached %q, want a", i, got)
		}
		if took := time.Since(start); took > 5*time.Second {
			t.Errorf("connection %d took %v", i, took)
		}
	}
	if got := f.Pool().Backend(hole).Stats().Failures; got == 0 {
		t.Error("connect timeouts to the unanswering backend were not counted")
	}
}

func TestTCPNoBackendCounted(t *testing.T) {
	hole := blackhole(t)
	pc := poolConfig("round_robin", hole)
	pc.ConnectTimeout = dur(50 * time.Millisecond)
	f := startFrontend(t, config.Frontend{}, pc)
	c, err := net.Dial("tcp", f.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	var b [1]byte
	if n, err := c.Read(b[:]); err == nil {
		t.Fatalf("read %d bytes through a pool whose only backend never answers", n)
	}
	if got := f.Stats().NoBackend; got != 1 {
		t.Errorf("NoBackend = %d, want 1", got)
	}
}
