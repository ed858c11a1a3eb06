package health

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"lbd/config"
	"lbd/proxy/balance"
)

func dur(d time.Duration) config.Duration { return config.Duration(d) }

// testConfig is a pool with the defaults of config/defaults.toml and a
// tcp check (tests replace the prober with a fake).
func testConfig() config.Pool {
	return config.Pool{
		Name: "app",
		Health: config.Health{
			Type: "tcp", Method: "GET", Path: "/", Interval: dur(5 * time.Second),
			Timeout: dur(2 * time.Second), Fall: 3, Rise: 2, ExpectStatus: "2xx",
		},
		Outlier: config.Outlier{
			EjectionTime: dur(30 * time.Second), MaxEjectionTime: dur(300 * time.Second), MaxEjectionPercent: 50,
		},
	}
}

func newBackends(t testing.TB, n int) []*balance.Backend {
	t.Helper()
	var bs []*balance.Backend
	for i := range n {
		b, err := balance.NewBackend(balance.BackendConfig{Address: fmt.Sprintf("198.18.0.%d:8080", i+1), Weight: 1})
		if err != nil {
			t.Fatal(err)
		}
		bs = append(bs, b)
	}
	return bs
}

// logBuffer collects log lines; safe for concurrent use.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

// count returns how many lines contain s.
func (l *logBuffer) count(s string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Count(l.buf.String(), s)
}

func (l *logBuffer) logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(l, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// newTestPool builds and starts a pool over n backends; Close runs at the
// end of the test.
func newTestPool(t *testing.T, cfg config.Pool, n int, opts ...Option) (*Pool, []*balance.Backend, *logBuffer) {
	t.Helper()
	bs := newBackends(t, n)
	var logs logBuffer
	p, err := NewPool(cfg, bs, logs.logger(), opts...)
	if err != nil {
		t.Fatalf("NewPool: %v", err)
	}
	p.Start()
	t.Cleanup(p.Close)
	return p, bs, &logs
}

// fakeProber answers probes as the test says. A backend with an automatic
// result gets it at once; otherwise each probe waits for answer.
type fakeProber struct {
	mu    sync.Mutex
	auto  map[string]Result
	wait  map[string]chan chan Result
	times map[string][]time.Time // when each probe began
}

func newFakeProber() *fakeProber {
	return &fakeProber{auto: map[string]Result{}, wait: map[string]chan chan Result{}, times: map[string][]time.Time{}}
}

func (f *fakeProber) ch(addr string) chan chan Result {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := f.wait[addr]
	if c == nil {
		c = make(chan chan Result)
		f.wait[addr] = c
	}
	return c
}

func (f *fakeProber) Probe(ctx context.Context, addr string) Result {
	f.mu.Lock()
	f.times[addr] = append(f.times[addr], time.Now())
	r, ok := f.auto[addr]
	f.mu.Unlock()
	if ok {
		return r
	}
	reply := make(chan Result)
	select {
	case f.ch(addr) <- reply:
	case <-ctx.Done():
		return Result{Text: "fake: not answered"}
	}
	return <-reply
}

// setAuto makes every later probe of addr return r at once.
func (f *fakeProber) setAuto(addr string, r Result) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.auto[addr] = r
}

// answer waits (in fake time) for the next probe of addr, gives it r and
// waits until the pool has acted on it. It runs inside a synctest bubble.
func (f *fakeProber) answer(addr string, r Result) {
	reply := <-f.ch(addr)
	reply <- r
	synctest.Wait()
}

func (f *fakeProber) probeTimes(addr string) []time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]time.Time(nil), f.times[addr]...)
}

var (
	pass = Result{OK: true, Text: "HTTP 200"}
	fail = Result{Text: "HTTP 503"}
)
