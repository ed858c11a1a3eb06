package drill

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"lbd/lab"
)

// DrillConfig sizes a drill.
type DrillConfig struct {
	Runs       int  // failovers per scenario and advert interval
	Keepalived bool // also run keepalived as the anchor
	Adverts    []time.Duration
}

// scenario is one way to lose the master, and how to undo it.
type scenario struct {
	name string
	do   func(c *cluster) error
	undo func(c *cluster) error
}

var lbdScenarios = []scenario{
	{"crash (switch port down)", func(c *cluster) error { return c.nodes[0].host.LinkDown() },
		func(c *cluster) error { return c.nodes[0].host.LinkUp() }},
	{"crash (SIGKILL of lbd)", func(c *cluster) error {
		c.nodes[0].proc.Signal(syscall.SIGKILL)
		return exited(c.nodes[0].proc.Wait(10 * time.Second))
	}, func(c *cluster) error { return c.start(0) }},
	{"planned (lbctl demote)", func(c *cluster) error { return c.lbctl(0, "demote") },
		func(c *cluster) error { return c.lbctl(0, "promote") }},
}

var keepalivedScenarios = []scenario{
	lbdScenarios[0],
	{"planned (graceful stop)", func(c *cluster) error {
		c.nodes[0].proc.Signal(syscall.SIGTERM)
		return exited(c.nodes[0].proc.Wait(10 * time.Second))
	}, func(c *cluster) error { return c.start(0) }},
}

// exited turns Wait's result into an error only when the process did not
// end: an exit status is what the scenario asked for.
func exited(err error) error {
	if errors.Is(err, lab.ErrTimeout) {
		return err
	}
	return nil
}

// sample is one measured failover.
type sample struct {
	window time.Duration
	failed int
}

// Drill is `make drill`: for advert intervals of 100 ms and 1 s it repeats
// every scenario cfg.Runs times against a pair of lbd nodes, and the
// comparable scenarios against a pair of keepalived nodes in the same run,
// then prints median, p95 and max of the client's unavailability window
// and the failed probes, for the failover and for the preemption back.
func Drill(ctx context.Context, opts Options, cfg DrillConfig) error {
	type row struct {
		impl, scenario string
		advert         time.Duration
		over, back     []sample
	}
	var rows []row
	impls := []string{"lbd"}
	if cfg.Keepalived {
		impls = append(impls, "keepalived")
	}
	adverts := cfg.Adverts
	if len(adverts) == 0 {
		adverts = []time.Duration{100 * time.Millisecond, time.Second}
	}
	for _, advert := range adverts {
		for _, impl := range impls {
			scs := lbdScenarios
			if impl == "keepalived" {
				scs = keepalivedScenarios
			}
			fmt.Fprintf(opts.Out, "== %s, advert interval %v, %d runs per scenario\n", impl, advert, cfg.Runs)
			res, err := drillPair(ctx, opts, impl, advert, scs, cfg.Runs)
			if err != nil {
				return fmt.Errorf("%s at %v: %w", impl, advert, err)
			}
			for i, sc := range scs {
				rows = append(rows, row{impl, sc.name, advert, res[i][0], res[i][1]})
			}
		}
	}
	fmt.Fprintln(opts.Out, "\nunavailability window seen by a client probing every 10 ms (fresh TCP connection, 200 ms timeout):")
	tw := tabwriter.NewWriter(opts.Out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "impl\tadvert\tscenario\truns\tmedian\tp95\tmax\tfailed probes (total)\tpreempt back median\tback failed")
	for _, r := range rows {
		m, p95, mx := stats(r.over)
		bm, _, _ := stats(r.back)
		fmt.Fprintf(tw, "%s\t%v\t%s\t%d\t%v\t%v\t%v\t%d\t%v\t%d\n", r.impl, r.advert, r.scenario, len(r.over), m, p95, mx, failed(r.over), bm, failed(r.back))
	}
	return tw.Flush()
}

// drillPair runs scenarios on one pair and returns, per scenario, the
// failover and preempt-back samples.
func drillPair(ctx context.Context, opts Options, impl string, advert time.Duration, scs []scenario, runs int) ([][2][]sample, error) {
	c, err := newCluster(opts)
	if err != nil {
		return nil, err
	}
	defer c.close()
	for i, n := range c.nodes {
		name := n.name
		addr := "127.0.0.1:8080"
		if impl == "keepalived" {
			addr = "198.18.0.100:80"
		}
		ln, err := freebindListen(n.host, addr)
		if err != nil {
			return nil, err
		}
		c.serve(ln, func(*http.Request) string { return name })
		prio := []int{150, 100}[i]
		if impl == "lbd" {
			err = c.writeLBD(i, prio, advert, true, []string{"127.0.0.1:8080"})
		} else {
			err = c.writeKeepalived(i, prio, 3, advert)
		}
		if err != nil {
			return nil, err
		}
		if err := c.start(i); err != nil {
			return nil, err
		}
	}
	if err := c.waitState(0, "MASTER", 30*time.Second); err != nil {
		return nil, err
	}
	if err := c.startProbe(); err != nil {
		return nil, err
	}
	defer func() {
		c.probe.Signal(syscall.SIGTERM)
		c.probe.Wait(5 * time.Second)
	}()
	settle := 3 * advert
	if err := c.waitServing("lb1", time.Now(), 30*time.Second); err != nil {
		return nil, err
	}
	type event struct {
		sc   int
		over time.Time
		back time.Time
	}
	var events []event
	for run := 0; run < runs; run++ {
		for i, sc := range scs {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			pause(ctx, settle)
			ev := event{sc: i, over: time.Now()}
			if err := sc.do(c); err != nil {
				return nil, fmt.Errorf("%s: %w", sc.name, err)
			}
			if err := c.waitServing("lb2", ev.over, 30*time.Second); err != nil {
				return nil, fmt.Errorf("%s: %w", sc.name, err)
			}
			pause(ctx, settle)
			ev.back = time.Now()
			if err := sc.undo(c); err != nil {
				return nil, fmt.Errorf("undo %s: %w", sc.name, err)
			}
			if err := c.waitServing("lb1", ev.back, 30*time.Second); err != nil {
				return nil, fmt.Errorf("back after %s: %w", sc.name, err)
			}
			events = append(events, ev)
			fmt.Fprintf(opts.Out, "  run %d/%d %s: done\n", run+1, runs, sc.name)
		}
	}
	pause(ctx, settle)
	rs := c.results()
	out := make([][2][]sample, len(scs))
	errs := make([]map[string]int, len(scs))
	for _, ev := range events {
		if w, ok := windowAfter(rs, ev.over, "lb1"); ok {
			out[ev.sc][0] = append(out[ev.sc][0], sample{w.Duration(), w.Failed})
			for _, r := range rs {
				if !r.OK() && !r.Sent.Before(w.LastOld) && !r.Sent.After(w.FirstNew) {
					if errs[ev.sc] == nil {
						errs[ev.sc] = map[string]int{}
					}
					errs[ev.sc][probeErrorKind(r.Err)]++
				}
			}
		}
		if w, ok := windowAfter(rs, ev.back, "lb2"); ok {
			out[ev.sc][1] = append(out[ev.sc][1], sample{w.Duration(), w.Failed})
		}
	}
	for i, m := range errs {
		if len(m) > 0 {
			fmt.Fprintf(opts.Out, "  %s: failed probes by error: %v\n", scs[i].name, m)
		}
	}
	return out, nil
}

// probeErrorKind shortens a probe's error to its kind.
func probeErrorKind(err string) string {
	for _, k := range []string{"connection reset", "connection refused", "i/o timeout", "EOF", "no route", "status"} {
		if strings.Contains(err, k) {
			return k
		}
	}
	return err
}

// stats returns median, p95 and max of the windows, rounded to 1 ms.
func stats(ss []sample) (median, p95, max time.Duration) {
	if len(ss) == 0 {
		return 0, 0, 0
	}
	ds := make([]time.Duration, len(ss))
	for i, s := range ss {
		ds[i] = s.window
	}
	slices.Sort(ds)
	r := func(d time.Duration) time.Duration { return d.Round(time.Millisecond) }
	return r(ds[len(ds)/2]), r(ds[(len(ds)*95+99)/100-1]), r(ds[len(ds)-1])
}

func failed(ss []sample) int {
	n := 0
	for _, s := range ss {
		n += s.failed
	}
	return n
}
