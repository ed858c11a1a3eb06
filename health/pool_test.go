package health

import (
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"

	"lbd/config"
	"lbd/proxy/balance"
)

func TestNewPoolRejects(t *testing.T) {
	bs := newBackends(t, 2)
	for _, tc := range []struct {
		name     string
		edit     func(*config.Pool)
		backends []*balance.Backend
		want     string
	}{
		{"bad type", func(c *config.Pool) { c.Health.Type = "ping" }, bs,
			`health: pool "app": health: unknown check type "ping" (want http, tcp, tls or none)`},
		{"zero interval", func(c *config.Pool) { c.Health.Interval = 0 }, bs,
			`health: pool "app": health interval 0s is not positive`},
		{"zero rise", func(c *config.Pool) { c.Health.Rise = 0 }, bs,
			`health: pool "app": health rise 0 and fall 3 must be at least 1`},
		{"negative slow_start", func(c *config.Pool) { c.SlowStart = dur(-time.Second) }, bs,
			`health: pool "app": slow_start -1s is negative`},
		{"max below ejection_time", func(c *config.Pool) {
			c.Outlier.ConsecutiveErrors = 5
			c.Outlier.MaxEjectionTime = dur(time.Second)
		}, bs, `health: pool "app": outlier max_ejection_time 1s is shorter than ejection_time 30s`},
		{"percent over 100", func(c *config.Pool) {
			c.Outlier.ConsecutiveErrors = 5
			c.Outlier.MaxEjectionPercent = 101
		}, bs, `health: pool "app": outlier max_ejection_percent 101 is out of range 0..100`},
		{"nil backend", func(*config.Pool) {}, []*balance.Backend{bs[0], nil},
			`health: pool "app": backend 1 is nil`},
		{"backend twice", func(*config.Pool) {}, []*balance.Backend{bs[0], bs[1], bs[0]},
			`health: pool "app": backend 198.18.0.1:8080 is listed twice`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig()
			tc.edit(&cfg)
			bs[0].SetEjected(true) // a rejected pool changes nothing
			if _, err := NewPool(cfg, tc.backends, nil); err == nil || err.Error() != tc.want {
				t.Errorf("NewPool error = %v, want %q", err, tc.want)
			}
			if !bs[0].Ejected() {
				t.Error("rejected NewPool changed a backend")
			}
		})
	}
}

func TestWatch(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := testConfig()
		cfg.Health.Rise = 1
		f := newFakeProber()
		p, bs, logs := newTestPool(t, cfg, 2, WithProber(f))
		w := p.Watch()
		var got []bool
		next := func() {
			synctest.Wait()
			select {
			case v := <-w:
				got = append(got, v)
			default:
				got = append(got, !got[len(got)-1]) // not delivered: record as a wrong value
				t.Errorf("no value on the Watch channel after step %d", len(got))
			}
		}
		next() // the current value at once
		f.answer(bs[0].Address(), fail)
		f.answer(bs[1].Address(), fail)
		next()
		f.answer(bs[1].Address(), pass)
		next()
		if diff := cmp.Diff([]bool{true, false, true}, got); diff != "" {
			t.Errorf("Watch values (-want +got):\n%s", diff)
		}
		if n := logs.count("pool has no healthy backend"); n != 1 {
			t.Errorf("%d \"no healthy backend\" log lines, want 1", n)
		}
		p.Close()
		if _, open := <-w; open {
			t.Error("Watch channel still open after Close")
		}
		if _, open := <-p.Watch(); open {
			t.Error("Watch after Close returned an open channel")
		}
	})
}

func TestTypeNoneKeepsBackendsUp(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := testConfig()
		cfg.Health.Type = "none"
		f := newFakeProber()
		p, bs, _ := newTestPool(t, cfg, 2, WithProber(f))
		time.Sleep(time.Minute)
		synctest.Wait()
		if p.Healthy() != 2 || bs[0].State() != balance.StateUp || len(f.probeTimes(bs[0].Address())) != 0 {
			t.Errorf("type none after a minute: Healthy() = %d, state %v, %d probes; want 2, up, 0",
				p.Healthy(), bs[0].State(), len(f.probeTimes(bs[0].Address())))
		}
	})
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestRealHTTPCheckMovesBackend(t *testing.T) {
	var status atomic.Int32
	status.Store(http.StatusServiceUnavailable)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(int(status.Load()))
	}))
	defer srv.Close()
	b, err := balance.NewBackend(balance.BackendConfig{Address: srv.Listener.Addr().String(), Weight: 1})
	if err != nil {
		t.Fatal(err)
	}
	cfg := testConfig()
	cfg.Health = config.Health{Type: "http", Method: "GET", Path: "/health", Interval: dur(20 * time.Millisecond),
		Timeout: dur(time.Second), Fall: 2, Rise: 2, ExpectStatus: "2xx"}
	p, err := NewPool(cfg, []*balance.Backend{b}, nil)
	if err != nil {
		t.Fatal(err)
	}
	p.Start()
	defer p.Close()
	waitFor(t, "backend down after 503s", func() bool { return b.State() == balance.StateDown })
	if got := p.Snapshot()[0].LastResult; got != "HTTP 503" {
		t.Errorf("LastResult = %q, want \"HTTP 503\"", got)
	}
	status.Store(http.StatusOK)
	waitFor(t, "backend up after 200s", func() bool { return b.State() == balance.StateUp })
	if st := p.Snapshot()[0]; st.State != Healthy || st.ConsecutiveOK < 2 || st.LastLatency <= 0 {
		t.Errorf("Snapshot = %+v, want healthy after at least 2 passes, with a latency", st)
	}
}

func TestChecksNeverOverlap(t *testing.T) {
	// Backend 0 answers in 50 ms, longer than the 10 ms interval; backend
	// 1 hangs until the test ends; backend 2 answers at once.
	var inFlight, most, slowDone, fastDone atomic.Int32
	release := make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := inFlight.Add(1)
		for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
		}
		time.Sleep(50 * time.Millisecond) // the backend is slow; nothing waits on this
		inFlight.Add(-1)
		slowDone.Add(1)
	}))
	defer slow.Close()
	hung := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer hung.Close()
	defer close(release)
	fast := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fastDone.Add(1) }))
	defer fast.Close()

	var bs []*balance.Backend
	for _, s := range []*httptest.Server{slow, hung, fast} {
		b, err := balance.NewBackend(balance.BackendConfig{Address: s.Listener.Addr().String(), Weight: 1})
		if err != nil {
			t.Fatal(err)
		}
		bs = append(bs, b)
	}
	cfg := testConfig()
	cfg.Health = config.Health{Type: "http", Method: "GET", Path: "/", Interval: dur(10 * time.Millisecond),
		Timeout: dur(time.Minute), Fall: 3, Rise: 2, ExpectStatus: "2xx"}
	p, err := NewPool(cfg, bs, nil)
	if err != nil {
		t.Fatal(err)
	}
	p.Start()
	defer p.Close()
	waitFor(t, "5 slow and 20 fast checks", func() bool { return slowDone.Load() >= 5 && fastDone.Load() >= 20 })
	if m := most.Load(); m != 1 {
		t.Errorf("%d checks of the slow backend ran at once, want 1", m)
	}
	if got := p.Snapshot()[1].LastCheck; !got.IsZero() {
		t.Errorf("hung backend's check finished at %v; the test expected it still running", got)
	}
}

func TestCloseLeavesNoGoroutines(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer srv.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	before := runtime.NumGoroutine()

	for _, tc := range []struct{ typ, addr string }{
		{"http", srv.Listener.Addr().String()},
		{"tcp", ln.Addr().String()},
		{"tcp", closedPort(t)},
		{"none", ln.Addr().String()},
	} {
		b, err := balance.NewBackend(balance.BackendConfig{Address: tc.addr, Weight: 1})
		if err != nil {
			t.Fatal(err)
		}
		cfg := testConfig()
		cfg.Health.Type = tc.typ
		cfg.Health.Interval = dur(5 * time.Millisecond)
		cfg.SlowStart = dur(time.Minute)
		cfg.Outlier.ConsecutiveErrors = 1
		cfg.Outlier.MaxEjectionPercent = 100
		p, err := NewPool(cfg, []*balance.Backend{b}, nil)
		if err != nil {
			t.Fatal(err)
		}
		p.Start()
		p.Watch()
		waitFor(t, tc.typ+" probes", func() bool { return tc.typ == "none" || !p.Snapshot()[0].LastCheck.IsZero() })
		p.Report(b, ConnectError) // an ejection timer is pending
		p.Close()
		p.Close() // a second Close is harmless
	}
	waitFor(t, "goroutines to end", func() bool { return runtime.NumGoroutine() <= before })
}
