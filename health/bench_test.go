package health

import (
	"bytes"
	"context"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"lbd/config"
	"lbd/proxy/balance"
)

// cpuTime returns the user and system CPU time of the process so far.
func cpuTime(b *testing.B) (user, sys time.Duration) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano()), time.Duration(ru.Stime.Nano())
}

// BenchmarkProbeCPU runs the checks of 1000 loopback backends at interval
// 1 s and reports the CPU time of the whole process (user + system, from
// getrusage) per second of wall time, as "cpu%" of one core, and per probe.
// "tcp": the listeners never accept, the kernel completes the handshakes,
// so the figure is the checker's own cost plus the backends' kernel side.
// "http": every backend is a listener of one in-process server that
// answers each request with a fixed 200 response. Each iteration measures
// 3 s; run it as
//
//	go test -run '^$' -bench ProbeCPU -benchtime 1x ./health/
func BenchmarkProbeCPU(b *testing.B) {
	b.Run("tcp", func(b *testing.B) { benchProbeCPU(b, "tcp") })
	b.Run("http", func(b *testing.B) { benchProbeCPU(b, "http") })
}

func benchProbeCPU(b *testing.B, typ string) {
	const n = 1000
	var bs []*balance.Backend
	var lc net.ListenConfig
	lc.SetMultipathTCP(false) // plain TCP backends, as most are
	var srv *fixedHTTPServer
	if typ == "http" {
		srv = newFixedHTTPServer()
		defer srv.close()
	}
	for range n {
		// 127.0.0.2: the TIME_WAIT sockets that other tests on the
		// machine leave on 127.0.0.1 do not use up its ports.
		ln, err := lc.Listen(context.Background(), "tcp", "127.0.0.2:0")
		if err != nil {
			b.Fatal(err)
		}
		defer ln.Close()
		if srv != nil {
			srv.serve(ln)
		}
		be, err := balance.NewBackend(balance.BackendConfig{Address: ln.Addr().String(), Weight: 1})
		if err != nil {
			b.Fatal(err)
		}
		bs = append(bs, be)
	}
	cfg := testConfig()
	cfg.Health.Type = typ
	cfg.Health.Path = "/health"
	cfg.Health.Interval = config.Duration(time.Second)
	cfg.Health.Timeout = config.Duration(time.Second)
	p, err := NewPool(cfg, bs, nil)
	if err != nil {
		b.Fatal(err)
	}
	var probes, failed atomic.Int64
	var lastFailure atomic.Pointer[Result]
	p.observe = func(_ string, r Result, _ time.Time) { // every probe the pool judged
		probes.Add(1)
		if !r.OK && failed.Add(1) <= 3 {
			f := r // a copy only here, so that a passing probe allocates nothing
			lastFailure.Store(&f)
		}
	}
	p.Start()
	defer p.Close()
	time.Sleep(1500 * time.Millisecond) // every backend has had its first probe
	b.ResetTimer()
	var user, sys, wall time.Duration
	var counted int64
	for range b.N {
		u0, s0 := cpuTime(b)
		p0, w0 := probes.Load(), time.Now()
		time.Sleep(3 * time.Second)
		u1, s1 := cpuTime(b)
		user, sys = user+u1-u0, sys+s1-s0
		counted += probes.Load() - p0
		wall += time.Since(w0)
	}
	cpu := user + sys
	b.StopTimer()
	// On a loaded machine a loopback handshake now and then takes over
	// the 1 s timeout; count such failures rather than fail.
	if f := failed.Load(); f > 0 {
		b.Logf("%d of %d probes failed, e.g. %q", f, probes.Load(), lastFailure.Load().Text)
	}
	if counted == 0 {
		b.Fatal("no probe in the measured time")
	}
	b.ReportMetric(float64(failed.Load()), "failed-probes")
	b.ReportMetric(100*cpu.Seconds()/wall.Seconds(), "cpu%")
	b.ReportMetric(100*sys.Seconds()/wall.Seconds(), "sys-cpu%")
	b.ReportMetric(float64(counted)/wall.Seconds(), "probes/s")
	b.ReportMetric(float64(cpu.Microseconds())/float64(counted), "µs-cpu/probe")
}

// fixedHTTPServer answers every request on its listeners with one fixed
// 200 response and closes the connection: the least CPU a backend can
// spend on an HTTP check, so that the benchmark shows the checker's.
type fixedHTTPServer struct {
	wg  sync.WaitGroup
	mu  sync.Mutex
	lns []net.Listener
}

func newFixedHTTPServer() *fixedHTTPServer { return &fixedHTTPServer{} }

const fixedResponse = "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nConnection: close\r\n\r\nok\n"

// serve accepts on ln until close.
func (s *fixedHTTPServer) serve(ln net.Listener) {
	s.mu.Lock()
	s.lns = append(s.lns, ln)
	s.mu.Unlock()
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				defer c.Close()
				var buf [1024]byte
				var req []byte
				_ = c.SetDeadline(time.Now().Add(5 * time.Second))
				for !bytes.Contains(req, []byte("\r\n\r\n")) {
					n, err := c.Read(buf[:])
					if err != nil {
						return
					}
					req = append(req, buf[:n]...)
				}
				_, _ = io.WriteString(c, fixedResponse)
			}()
		}
	}()
}

// close closes the listeners and waits for the connections to end.
func (s *fixedHTTPServer) close() {
	s.mu.Lock()
	for _, ln := range s.lns {
		ln.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
}

// BenchmarkReport is the proxy's hot path: a success and, now and then, an
// error on backends shared by all goroutines. It must not allocate.
func BenchmarkReport(b *testing.B) {
	cfg := testConfig()
	cfg.Health.Type = "none"
	cfg.Outlier.ConsecutiveErrors = 5
	bs := newBackends(b, 8)
	p, err := NewPool(cfg, bs, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer p.Close()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			o := Success
			if i%100 == 0 {
				o = Status5xx
			}
			p.Report(bs[i%len(bs)], o)
			i++
		}
	})
}
