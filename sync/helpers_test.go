package lbsync

import (
	"fmt"
	"log/slog"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"
)

// testLog discards logs unless LBD_TEST_LOG is set.
func testLog(testing.TB) *slog.Logger {
	if os.Getenv("LBD_TEST_LOG") == "" {
		return slog.New(slog.DiscardHandler)
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// fastMemberlist shortens memberlist's timers for loopback tests.
func fastMemberlist(mc *memberlist.Config) {
	mc.ProbeInterval = 100 * time.Millisecond
	mc.ProbeTimeout = 50 * time.Millisecond
	mc.GossipInterval = 20 * time.Millisecond
	mc.PushPullInterval = time.Second
	mc.TCPTimeout = time.Second
	mc.SuspicionMult = 2
}

type nodeOpt func(*Config)

func withKey(k []byte) nodeOpt      { return func(c *Config) { c.SecretKey = k } }
func withStateDir(d string) nodeOpt { return func(c *Config) { c.StateDir = d } }
func withPeers(p ...string) nodeOpt { return func(c *Config) { c.Peers = p } }
func peerOf(n *Cluster) string      { return n.Addr().String() }
func key(i int) string              { return fmt.Sprintf("http-cookie/app/%012d", i) }
func backend(i int) string          { return fmt.Sprintf("198.18.1.%d:8080", i%8+1) }

// startNode starts a node on a free loopback port; it is closed when the
// test ends.
func startNode(t testing.TB, name string, opts ...nodeOpt) *Cluster {
	t.Helper()
	cfg := Config{NodeName: name, Bind: "127.0.0.1:0", JoinRetry: 100 * time.Millisecond, tune: fastMemberlist}
	for _, o := range opts {
		o(&cfg)
	}
	c, err := New(cfg, testLog(t))
	if err != nil {
		t.Fatalf("starting %s: %v", name, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// startCluster starts n nodes, each joining the first, and waits until all
// see all and their streams are up.
func startCluster(t testing.TB, n int, opts ...nodeOpt) []*Cluster {
	t.Helper()
	nodes := []*Cluster{startNode(t, "lb1", opts...)}
	for i := 2; i <= n; i++ {
		nodes = append(nodes, startNode(t, fmt.Sprintf("lb%d", i), append(opts, withPeers(peerOf(nodes[0])))...))
	}
	waitConnected(t, nodes...)
	return nodes
}

// waitConnected waits until every node sees every other alive and has a
// stream to it whose full-state transfer is done.
func waitConnected(t testing.TB, nodes ...*Cluster) {
	t.Helper()
	waitFor(t, "members and streams", func() bool {
		for _, n := range nodes {
			if len(n.alivePeers()) != len(nodes)-1 || len(*n.feeds.Load()) != len(nodes)-1 {
				return false
			}
			if n.Stats().FullSyncsReceived < uint64(len(nodes)-1) {
				return false
			}
		}
		return true
	})
}

func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// fakeClock is an injected clock for the tables.
type fakeClock struct{ ns atomic.Int64 }

func (f *fakeClock) now() int64              { return f.ns.Load() }
func (f *fakeClock) advance(d time.Duration) { f.ns.Add(int64(d)) }

// localCluster returns a cluster without network, on a fake clock.
func localCluster(t testing.TB, name string) (*Cluster, *fakeClock) {
	t.Helper()
	clk := &fakeClock{}
	clk.ns.Store(time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano())
	c := newCluster(Config{NodeName: name}, testLog(t))
	c.now = clk.now
	return c, clk
}

// capture makes publish queue writes as if a member were connected, and
// returns a function that takes the queued writes.
func capture(c *Cluster) func() []delta {
	c.feeds.Store(&[]*feed{{}})
	return func() []delta {
		c.out.mu.Lock()
		defer c.out.mu.Unlock()
		d := c.out.pending
		c.out.pending = nil
		return d
	}
}
