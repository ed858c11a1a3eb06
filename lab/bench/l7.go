package bench

import (
	"context"
	"fmt"
	"os/exec"
	"slices"
	"strconv"
	"time"
)

// l7 measures mode http proxies with wrk: every body size at every
// connection count, against two backends behind each proxy.
func (r *runner) l7(ctx context.Context) error {
	hb := newHTTPBackend(slices.Concat([]int{13}, r.o.Sizes))
	var backends []string
	for range 2 {
		s, err := serve("127.0.0.1:0", hb.handle)
		if err != nil {
			return err
		}
		defer s.Close()
		backends = append(backends, s.Addr())
	}
	routes := []route{{name: "http", mode: "http", backends: backends}}
	ts, stop, err := r.startAll(ctx, r.rows(direct, haproxyPlain, nginxName, lbdName), routes)
	defer stop()
	if err != nil {
		return err
	}
	defer r.printL7() // what was measured, on errors too
	for round := 1; round <= r.o.Runs; round++ {
		for _, size := range r.o.Sizes {
			for _, c := range r.o.WrkConns {
				for _, t := range ts {
					s, err := r.wrk(ctx, t, round, size, c)
					if err != nil {
						return err
					}
					r.add(s)
				}
			}
		}
		if err := checkAlive(ts); err != nil {
			return err
		}
	}
	return nil
}

func (r *runner) wrk(ctx context.Context, t *target, round, size, conns int) (Sample, error) {
	s := Sample{Part: "l7", Test: "http", Proxy: t.name, Round: round, Concurrency: conns, BodyBytes: size}
	url := fmt.Sprintf("http://%s/%d", t.addrs["http"], size)
	secs := max(1, int(r.o.WrkDuration.Round(time.Second)/time.Second))
	// wrk's own timeout is 2 s per request; the whole run gets a margin.
	runCtx, cancel := context.WithTimeout(ctx, time.Duration(secs)*time.Second+30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(runCtx, "taskset", "-c", strconv.Itoa(r.o.LoadCPU), r.o.Wrk,
		"-t1", "-c"+strconv.Itoa(conns), "-d"+strconv.Itoa(secs)+"s", "--latency", url)
	cmd.SysProcAttr = sysProcAttr()
	var out []byte
	cpu, _, err := measure(t, func() (err error) {
		out, err = cmd.CombinedOutput()
		return err
	})
	if ctx.Err() != nil {
		return s, ctx.Err()
	}
	if err != nil {
		return s, fmt.Errorf("bench: wrk against %s: %w; output:\n%s", t.name, err, out)
	}
	w, err := ParseWrk(string(out))
	if err != nil {
		return s, fmt.Errorf("%w; output:\n%s", err, out)
	}
	s.Seconds, s.ProxyCPUSeconds, s.Requests, s.ReqPerSec = w.Duration.Seconds(), cpu, w.Requests, w.ReqPerSec
	s.Errors, s.Raw = w.Errors(), string(out)
	s.LatencyMicros = map[string]float64{}
	for p, d := range w.Latency {
		s.LatencyMicros[strconv.Itoa(p)] = float64(d) / float64(time.Microsecond)
	}
	if w.Requests == 0 {
		return s, fmt.Errorf("bench: wrk made no request through %s; output:\n%s", t.name, out)
	}
	r.progress("l7 round %d %6d B c=%-3d %-8s %8.0f req/s  p50 %7.0f µs  p99 %7.0f µs  %5.1f µs cpu/req  %d errors",
		round, size, conns, t.name, w.ReqPerSec, s.LatencyMicros["50"], s.LatencyMicros["99"], cpu/float64(w.Requests)*1e6, s.Errors)
	return s, nil
}
