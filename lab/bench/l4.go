package bench

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

const (
	bulkTimeout = 5 * time.Minute
	echoTimeout = 5 * time.Second
	echoSize    = 64
)

// l4 measures mode tcp proxies: one bulk stream, then connection rates.
func (r *runner) l4(ctx context.Context) error {
	sink, err := serve("127.0.0.1:0", handleSink)
	if err != nil {
		return err
	}
	defer sink.Close()
	echo, err := serve("127.0.0.1:0", handleEcho)
	if err != nil {
		return err
	}
	defer echo.Close()
	routes := []route{
		{name: "bulk", mode: "tcp", backends: []string{sink.Addr()}},
		{name: "echo", mode: "tcp", backends: []string{echo.Addr()}},
	}
	ts, stop, err := r.startAll(ctx, r.rows(direct, haproxySplice, haproxyPlain, lbdName), routes)
	defer stop()
	if err != nil {
		return err
	}
	defer r.printL4() // what was measured, on errors too
	for round := 1; round <= r.o.Runs; round++ {
		for _, t := range ts {
			s, err := r.bulk(ctx, t, round)
			if err != nil {
				return err
			}
			r.add(s)
		}
		for _, w := range r.o.Workers {
			for _, t := range ts {
				s, err := r.connRate(ctx, t, round, w)
				if err != nil {
					return err
				}
				r.add(s)
			}
		}
		if err := checkAlive(ts); err != nil {
			return err
		}
	}
	return nil
}

// measure runs f and returns the proxy's CPU seconds and the wall time.
func measure(t *target, f func() error) (cpu, wall float64, err error) {
	c0, err := t.cpu()
	if err != nil {
		return 0, 0, err
	}
	start := time.Now()
	err = f()
	wall = time.Since(start).Seconds()
	c1, cerr := t.cpu()
	if err == nil {
		err = cerr
	}
	return c1 - c0, wall, err
}

func (r *runner) bulk(ctx context.Context, t *target, round int) (Sample, error) {
	s := Sample{Part: "l4", Test: "bulk", Proxy: t.name, Round: round}
	var took time.Duration
	cpu, _, err := measure(t, func() (err error) {
		took, err = bulkOnce(ctx, t.addrs["bulk"], r.o.BulkBytes)
		return err
	})
	if err != nil {
		return s, fmt.Errorf("bench: bulk through %s: %w", t.name, err)
	}
	s.Seconds, s.ProxyCPUSeconds, s.Bytes = took.Seconds(), cpu, r.o.BulkBytes
	r.progress("l4 round %d bulk %-14s %6.2f Gbit/s  cpu %.2fs", round, t.name, float64(s.Bytes)*8/s.Seconds/1e9, cpu)
	return s, nil
}

// bulkOnce sends an 8-byte length and n bytes to a sink at addr and returns
// the time until the sink confirmed it had every byte.
func bulkOnce(ctx context.Context, addr string, n int64) (time.Duration, error) {
	d := net.Dialer{Timeout: echoTimeout}
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(bulkTimeout))
	defer context.AfterFunc(ctx, func() { c.SetDeadline(time.Now()) })()
	buf := make([]byte, 1<<20)
	start := time.Now()
	binary.BigEndian.PutUint64(buf, uint64(n))
	if _, err := c.Write(buf[:8]); err != nil {
		return 0, err
	}
	clear(buf[:8])
	for left := n; left > 0; {
		w, err := c.Write(buf[:min(left, int64(len(buf)))])
		left -= int64(w)
		if err != nil {
			return 0, err
		}
	}
	var ack [1]byte
	if _, err := io.ReadFull(c, ack[:]); err != nil {
		return 0, fmt.Errorf("waiting for the sink's confirmation: %w", err)
	}
	return time.Since(start), nil
}

func (r *runner) connRate(ctx context.Context, t *target, round, workers int) (Sample, error) {
	s := Sample{Part: "l4", Test: "connrate", Proxy: t.name, Round: round, Concurrency: workers}
	var res rateResult
	cpu, _, err := measure(t, func() error {
		res = connRate(ctx, t.addrs["echo"], workers, r.o.ConnDuration)
		return ctx.Err()
	})
	if err != nil {
		return s, err
	}
	s.Seconds, s.ProxyCPUSeconds, s.Conns, s.Errors = res.elapsed.Seconds(), cpu, res.ok, res.failed
	if res.firstErr != nil {
		s.FirstError = res.firstErr.Error()
	}
	if res.ok == 0 {
		return s, fmt.Errorf("bench: no connection through %s succeeded: %w", t.name, res.firstErr)
	}
	r.progress("l4 round %d conn c=%-3d %-14s %6.0f conn/s  %4.0f µs cpu/conn  %d errors", round, workers, t.name,
		float64(res.ok)/s.Seconds, cpu/float64(res.ok)*1e6, res.failed)
	return s, nil
}

type rateResult struct {
	ok, failed int64
	elapsed    time.Duration
	firstErr   error
}

// connRate runs workers loops of connect, 64-byte echo, close against addr
// for d and counts the round trips that succeeded and failed.
func connRate(ctx context.Context, addr string, workers int, d time.Duration) rateResult {
	var ok, failed atomic.Int64
	var once sync.Once
	var firstErr error
	msg := bytes.Repeat([]byte("0123456789abcdef"), echoSize/16)
	start := time.Now()
	deadline := start.Add(d)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			buf := make([]byte, echoSize)
			for ctx.Err() == nil && time.Now().Before(deadline) {
				c, err := echoConn(ctx, addr, msg, buf)
				if c != nil {
					c.Close()
				}
				if err != nil {
					failed.Add(1)
					once.Do(func() { firstErr = err })
					time.Sleep(time.Millisecond) // no spinning on a refusing proxy
					continue
				}
				ok.Add(1)
			}
		})
	}
	wg.Wait()
	return rateResult{ok: ok.Load(), failed: failed.Load(), elapsed: time.Since(start), firstErr: firstErr}
}

// echoConn connects to addr and makes one echo round trip of msg, reading
// into buf; the caller closes the connection (returned on errors too).
func echoConn(ctx context.Context, addr string, msg, buf []byte) (net.Conn, error) {
	d := net.Dialer{Timeout: echoTimeout}
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	c.SetDeadline(time.Now().Add(echoTimeout))
	if _, err := c.Write(msg); err != nil {
		return c, err
	}
	if _, err := io.ReadFull(c, buf); err != nil {
		return c, fmt.Errorf("reading the echo: %w", err)
	}
	if !bytes.Equal(buf, msg) {
		return c, errors.New("the echo differs from what was sent")
	}
	return c, nil
}
