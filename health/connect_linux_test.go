package health

import (
	"context"
	"net"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"

	"lbd/lab"
	"lbd/proxy/balance"
)

func TestConnectProbeTimeoutAndCancel(t *testing.T) {
	addr := lab.NeverAccepts(t)
	timeout := 200 * time.Millisecond
	pr := &tcpProber{timeout: timeout}
	var got []string
	for range 4 { // the first connects fill the queue; then they hang
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		start := time.Now()
		r := pr.Probe(ctx, addr)
		cancel()
		got = append(got, r.Text)
		if r.Text == "timeout after 200ms" {
			if took := time.Since(start); took < timeout {
				t.Errorf("timed out after %v, before the %v timeout", took, timeout)
			}
			break
		}
	}
	if last := got[len(got)-1]; last != "timeout after 200ms" {
		t.Fatalf("probes of a listener that drops SYNs gave %q, want one \"timeout after 200ms\"", got)
	}

	// Close cancels the probe's context: it returns at once, not at the
	// timeout.
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(50*time.Millisecond, cancel)
	start := time.Now()
	pr = &tcpProber{timeout: time.Minute}
	if r := pr.Probe(ctx, addr); r.OK {
		t.Errorf("cancelled probe = %+v, want a failure", r)
	}
	if took := time.Since(start); took > 10*time.Second {
		t.Errorf("cancelled probe returned after %v, want soon after the cancel", took)
	}
}

// rawTCPPool builds and starts a tcp pool over addrs with the built-in
// check; it records when each probe began and how it ended.
func rawTCPPool(t *testing.T, interval, timeout time.Duration, addrs ...string) (*Pool, *probeLog) {
	t.Helper()
	var bs []*balance.Backend
	for _, a := range addrs {
		b, err := balance.NewBackend(balance.BackendConfig{Address: a, Weight: 1})
		if err != nil {
			t.Fatal(err)
		}
		bs = append(bs, b)
	}
	cfg := testConfig()
	cfg.Health.Interval, cfg.Health.Timeout = dur(interval), dur(timeout)
	p, err := NewPool(cfg, bs, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !p.rawTCP {
		t.Fatal("the tcp pool does not use the raw connect path")
	}
	l := &probeLog{starts: map[string][]time.Time{}, results: map[string][]Result{}}
	p.observe = l.add
	p.Start()
	t.Cleanup(p.Close)
	return p, l
}

// probeLog is what the pool's observe hook saw.
type probeLog struct {
	mu      sync.Mutex
	starts  map[string][]time.Time
	results map[string][]Result
}

func (l *probeLog) add(addr string, r Result, start time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.starts[addr] = append(l.starts[addr], start)
	l.results[addr] = append(l.results[addr], r)
}

func (l *probeLog) get(addr string) ([]time.Time, []Result) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]time.Time(nil), l.starts[addr]...), append([]Result(nil), l.results[addr]...)
}

// TestRawTCPChecks runs the tcp check of a pool, with its own scheduler
// and timerfd, against an open port, a closed one and one that drops
// SYNs: each gets its verdict, and the hung connects delay nobody.
func TestRawTCPChecks(t *testing.T) {
	open, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer open.Close()
	open6, err := net.Listen("tcp", "[::1]:0")
	if err != nil {
		t.Fatal(err)
	}
	defer open6.Close()
	closed, hung := closedPort(t), lab.NeverAccepts(t)
	// Fill the hung listener's queue, so that every probe's SYN is dropped.
	for range 4 {
		if c, err := net.DialTimeout("tcp", hung, 100*time.Millisecond); err == nil {
			defer c.Close()
		}
	}
	const interval, timeout = 50 * time.Millisecond, 120 * time.Millisecond
	p, l := rawTCPPool(t, interval, timeout, open.Addr().String(), open6.Addr().String(), closed, hung)
	waitFor(t, "3 probes of the hung backend", func() bool { s, _ := l.get(hung); return len(s) >= 3 })
	p.Close()

	want := map[string]string{
		open.Addr().String():  "connected",
		open6.Addr().String(): "connected",
		closed:                "connect: connection refused",
		hung:                  "timeout after 120ms",
	}
	for addr, text := range want {
		starts, results := l.get(addr)
		for i, r := range results {
			if r.Text != text || r.OK != (text == "connected") {
				t.Errorf("%s: probe %d = %+v, want %q", addr, i, r, text)
				break
			}
		}
		for i := 1; i < len(starts); i++ {
			// Never early: one interval after the last start, -4 %,
			// or after a timeout the next interval boundary.
			if gap := starts[i].Sub(starts[i-1]); gap < interval*96/100 {
				t.Errorf("%s: probes %d and %d began %v apart, want at least %v", addr, i-1, i, gap, interval*96/100)
			}
		}
	}
	// While the hung backend's probes waited out their timeouts, the
	// others went on every interval.
	hs, _ := l.get(hung)
	opens, _ := l.get(open.Addr().String())
	span := hs[len(hs)-1].Sub(hs[0])
	if n := countBetween(opens, hs[0], hs[len(hs)-1]); n < int(span/interval)/2 {
		t.Errorf("%d probes of the open backend in the %v of the hung one's, want about %d", n, span, span/interval)
	}
	snap := p.Snapshot()
	got := map[string]State{}
	for _, h := range snap {
		got[h.Address] = h.State
	}
	wantState := map[string]State{open.Addr().String(): Healthy, open6.Addr().String(): Healthy, closed: Unhealthy, hung: Unhealthy}
	if diff := cmp.Diff(wantState, got); diff != "" {
		t.Errorf("states (-want +got):\n%s", diff)
	}
}

func countBetween(ts []time.Time, from, to time.Time) int {
	n := 0
	for _, t := range ts {
		if !t.Before(from) && !t.After(to) {
			n++
		}
	}
	return n
}

// TestRawConnectAllocatesNothing: a tcp check that the kernel completes
// at once, passing or refused, and its verdict allocate nothing.
func TestRawConnectAllocatesNothing(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() { // keeps the accept queue short
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	for _, tc := range []struct {
		addr, want string
	}{
		{ln.Addr().String(), "connected"},
		{closedPort(t), "connect: connection refused"},
	} {
		b, err := balance.NewBackend(balance.BackendConfig{Address: tc.addr, Weight: 1})
		if err != nil {
			t.Fatal(err)
		}
		p, err := NewPool(testConfig(), []*balance.Backend{b}, nil) // not started: the test runs the probes
		if err != nil {
			t.Fatal(err)
		}
		m := p.members[0]
		probe := func() {
			p.startProbe(m)
			p.qmu.Lock()
			p.queue = p.queue[:0]
			p.qmu.Unlock()
		}
		probe()
		if got := p.Snapshot()[0].LastResult; got != tc.want {
			t.Fatalf("%s: probe gave %q, want %q", tc.addr, got, tc.want)
		}
		if n := testing.AllocsPerRun(200, probe); n != 0 {
			t.Errorf("%s: %v allocations per probe, want 0", tc.addr, n)
		}
		p.Close()
	}
}

// TestConnectState pins the kernel behaviour the raw path relies on: a
// second connect(2) on a non-blocking socket tells connected, refused and
// under way apart.
func TestConnectState(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	hung := lab.NeverAccepts(t)
	for range 4 { // fill its queue
		if c, err := net.DialTimeout("tcp", hung, 100*time.Millisecond); err == nil {
			defer c.Close()
		}
	}
	for _, tc := range []struct {
		name, addr string
		want       Result
		wantDone   bool
	}{
		{"open", ln.Addr().String(), connected, true},
		{"closed", closedPort(t), refused, true},
		{"drops SYNs", hung, Result{}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := parseRawAddr(tc.addr)
			r, fd, done := openConnect(a)
			if fd >= 0 {
				defer unix.Close(fd)
			}
			if r != tc.want || done != tc.wantDone {
				t.Errorf("openConnect(%s) = %+v, done %v; want %+v, done %v", tc.addr, r, done, tc.want, tc.wantDone)
			}
			if done && tc.want.OK { // asked again, it is still connected
				if r, done := connectState(fd, a); r != connected || !done {
					t.Errorf("connectState after connecting = %+v, %v; want connected", r, done)
				}
			}
		})
	}
}

// TestCloseCutsPendingConnect: Close does not wait for the timeout of a
// connect under way, and judges nothing from it.
func TestCloseCutsPendingConnect(t *testing.T) {
	hung := lab.NeverAccepts(t)
	for range 4 { // fill its queue
		if c, err := net.DialTimeout("tcp", hung, 100*time.Millisecond); err == nil {
			defer c.Close()
		}
	}
	before := runtime.NumGoroutine()
	p, l := rawTCPPool(t, 10*time.Millisecond, time.Minute, hung)
	// schedule, and then the goroutine of the pending connect
	waitFor(t, "a connect under way", func() bool { return runtime.NumGoroutine() >= before+2 })
	start := time.Now()
	p.Close()
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("Close took %v with a connect under way, want well under its 1m timeout", took)
	}
	if _, results := l.get(hung); len(results) != 0 {
		t.Errorf("probes judged after Close cut them short: %+v", results)
	}
	waitFor(t, "goroutines to end", func() bool { return runtime.NumGoroutine() <= before })
}
