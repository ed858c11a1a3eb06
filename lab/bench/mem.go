package bench

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// mem measures the memory an idle proxied connection costs: RSS of a fresh
// proxy before and after IdleConns connections are open through it, each
// proven end to end with one echo.
func (r *runner) mem(ctx context.Context) error {
	echo, err := serve("127.0.0.1:0", handleEcho)
	if err != nil {
		return err
	}
	defer echo.Close()
	routes := []route{{name: "echo", mode: "tcp", backends: []string{echo.Addr()}}}
	names := r.rows(haproxyPlain, lbdName)
	if fit := idleFit(r.fdLimit); r.idle > fit {
		r.progress("mem: the open file limit is %d and cannot be raised (no CAP_SYS_RESOURCE?): %d idle connections instead of %d "+
			"(each takes two descriptors in the proxy, and two in this process: client and backend)", r.fdLimit, fit, r.idle)
		r.idle = fit
	}
	defer r.printMem(names) // what was measured, on errors too
	for round := 1; round <= r.o.Runs; round++ {
		for _, name := range names {
			s, err := r.memOnce(ctx, name, round, routes)
			if err != nil {
				return err
			}
			r.add(s)
		}
	}
	return nil
}

func (r *runner) memOnce(ctx context.Context, name string, round int, routes []route) (Sample, error) {
	s := Sample{Part: "mem", Test: "idle", Proxy: name, Round: round}
	ts, stop, err := r.startAll(ctx, []string{name}, routes)
	defer stop()
	if err != nil {
		return s, err
	}
	pid := ts[0].p.pid()
	if s.RSSBefore, err = settledRSS(ctx, pid); err != nil {
		return s, err
	}
	if s.FDsBefore, err = FDCount(pid); err != nil {
		return s, err
	}
	start := time.Now()
	conns, err := openIdle(ctx, ts[0].addrs["echo"], r.idle)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	if err != nil {
		return s, fmt.Errorf("bench: idle connections through %s: %w", name, err)
	}
	s.Seconds, s.Conns = time.Since(start).Seconds(), int64(len(conns))
	if s.RSSAfter, err = settledRSS(ctx, pid); err != nil {
		return s, err
	}
	if s.FDsAfter, err = FDCount(pid); err != nil {
		return s, err
	}
	if err := checkAlive(ts); err != nil {
		return s, err
	}
	r.progress("mem round %d %-8s %6.0f B/conn  rss %.1f → %.1f MiB  fds %d → %d", round, name,
		float64(s.RSSAfter-s.RSSBefore)/float64(s.Conns), mib(s.RSSBefore), mib(s.RSSAfter), s.FDsBefore, s.FDsAfter)
	return s, nil
}

// idleFit is how many idle connections fit in fdLimit descriptors, in
// hundreds: two each in a proxy (client and backend sockets; neither lbd
// nor HAProxy holds a splice pipe for an idle connection) and two in this
// process (client socket and echo backend socket), beside fdReserve for
// listeners, pollers, logs and the like.
func idleFit(fdLimit int) int {
	return max(100, (fdLimit-fdReserve)/2/100*100)
}

// fdReserve is the descriptors a process under test keeps beside two per
// proxied connection.
const fdReserve = 150

func mib(b int64) float64 { return float64(b) / (1 << 20) }

// settledRSS reads the RSS of pid every 100 ms until three readings in a row
// are within 64 KiB of each other (or 3 s passed) and returns the last.
func settledRSS(ctx context.Context, pid int) (int64, error) {
	const tolerance = 64 << 10
	deadline := time.Now().Add(3 * time.Second)
	var last []int64
	for {
		v, err := RSS(pid)
		if err != nil {
			return 0, err
		}
		last = append(last, v)
		if n := len(last); n >= 3 {
			w := last[n-3:]
			if max(w[0], w[1], w[2])-min(w[0], w[1], w[2]) <= tolerance || time.Now().After(deadline) {
				return v, nil
			}
		}
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// openIdle opens n connections to addr, 64 at a time, makes one echo round
// trip on each and returns them open. On an error it returns what it has
// opened (for the caller to close) and the first error.
func openIdle(ctx context.Context, addr string, n int) ([]net.Conn, error) {
	msg := bytes.Repeat([]byte("i"), echoSize)
	var (
		next     atomic.Int64
		mu       sync.Mutex
		conns    = make([]net.Conn, 0, n)
		firstErr error
		wg       sync.WaitGroup
	)
	for range 64 {
		wg.Go(func() {
			buf := make([]byte, echoSize)
			for next.Add(1) <= int64(n) {
				c, err := echoConn(ctx, addr, msg, buf)
				mu.Lock()
				if c != nil {
					conns = append(conns, c)
				}
				if err != nil && firstErr == nil {
					firstErr = err
				}
				stop := firstErr != nil
				mu.Unlock()
				if stop {
					return
				}
				c.SetDeadline(time.Time{})
			}
		})
	}
	wg.Wait()
	return conns, firstErr
}
