package drill

import (
	"context"
	"fmt"
	"net/http"
	"syscall"
	"time"

	"lbd/lab/probe"
)

// lbOf names the load balancer node a backend connection comes from.
func lbOf(r *http.Request) string {
	switch {
	case hasPrefix(r.RemoteAddr, "198.18.0.11:"):
		return "lb1"
	case hasPrefix(r.RemoteAddr, "198.18.0.12:"):
		return "lb2"
	}
	return "unknown"
}

func hasPrefix(s, p string) bool { return len(s) >= len(p) && s[:len(p)] == p }

// Demo is `make demo`: two lbd nodes elect lb1 master for the VIP, a client
// probes the VIP every 10 ms through lbd's proxy to two HTTP backends, then
// lb1 is demoted (a planned handover, make-before-break) and the new master
// lb2 is killed with SIGKILL (a crash). It prints a timeline per 100 ms of
// which node answered and the measured unavailability windows.
func Demo(ctx context.Context, opts Options) error {
	out := opts.Out
	c, err := newCluster(opts)
	if err != nil {
		return err
	}
	defer c.close()
	fmt.Fprintln(out, "lab: switch with lb1 198.18.0.11, lb2 198.18.0.12, be1 198.18.0.21, be2 198.18.0.22, client 198.18.0.50; VIP 198.18.0.100")
	for i, name := range []string{"be1", "be2"} {
		h, err := c.lab.NewHost(name, 21+i)
		if err != nil {
			return err
		}
		ln, err := h.Listen("tcp", fmt.Sprintf("198.18.0.%d:8080", 21+i))
		if err != nil {
			return err
		}
		c.serve(ln, func(r *http.Request) string { return lbOf(r) + " via " + name })
	}
	backends := []string{"198.18.0.21:8080", "198.18.0.22:8080"}
	for i, prio := range []int{150, 100} {
		// preempt off: after the demote drill lb1 rejoins as backup, so
		// the crash of lb2 hands the VIP back to it.
		if err := c.writeLBD(i, prio, 100*time.Millisecond, false, backends); err != nil {
			return err
		}
		if err := c.start(i); err != nil {
			return err
		}
	}
	if err := c.waitState(0, "MASTER", 15*time.Second); err != nil {
		return err
	}
	fmt.Fprintf(out, "lbd: lb1 %s (priority 150), lb2 %s (priority 100), advert interval 100ms\n", c.state(0), c.state(1))
	if err := c.startProbe(); err != nil {
		return err
	}
	if err := c.waitServing("lb1", c.started, 10*time.Second); err != nil {
		return err
	}
	pause(ctx, time.Second)

	marks := map[time.Time]string{}
	demoteAt := time.Now()
	marks[demoteAt] = "lbctl demote on lb1"
	fmt.Fprintln(out, "drill 1: lbctl demote on lb1 (planned handover)")
	if err := c.lbctl(0, "demote"); err != nil {
		return err
	}
	if err := c.waitServing("lb2", demoteAt, 10*time.Second); err != nil {
		return err
	}
	pause(ctx, time.Second)
	if err := c.lbctl(0, "promote"); err != nil {
		return err
	}
	pause(ctx, 500*time.Millisecond)

	killAt := time.Now()
	marks[killAt] = "SIGKILL of lbd on lb2 (master)"
	fmt.Fprintln(out, "drill 2: SIGKILL of lbd on lb2, the master now (a crash)")
	c.nodes[1].proc.Signal(syscall.SIGKILL)
	if err := c.waitServing("lb1", killAt, 10*time.Second); err != nil {
		return err
	}
	pause(ctx, time.Second)
	end := time.Now()
	c.probe.Signal(syscall.SIGTERM)
	c.probe.Wait(5 * time.Second)

	rs := c.results()
	fmt.Fprintf(out, "\ntimeline (per 100 ms: answers by node; FAILED = probe without answer):\n")
	probe.Timeline(out, rs, c.started, end, 100*time.Millisecond, marks)
	fmt.Fprintln(out, "\nmeasured (send time of the last answer from the old master to the first from the new):")
	for _, ev := range []struct {
		what string
		at   time.Time
		from string
	}{{"demote", demoteAt, "lb1"}, {"crash", killAt, "lb2"}} {
		w, ok := windowAfter(rs, ev.at, ev.from)
		if !ok {
			return fmt.Errorf("%w after the %s", errNoWindow, ev.what)
		}
		fmt.Fprintf(out, "  %-7s %s → %s: window %v, %d failed probes\n", ev.what, w.From, w.To, w.Duration().Round(time.Millisecond), w.Failed)
	}
	fmt.Fprintf(out, "  probes: %d sent, %d answered\n", len(rs), len(rs)-probe.Failed(rs, c.started, end))
	return nil
}

// windowAfter returns the first failover away from "from" at or after t.
func windowAfter(rs []probe.Result, t time.Time, from string) (probe.Window, bool) {
	for _, w := range probe.Windows(rs, t.Add(-time.Second)) {
		if w.From == from && !w.FirstNew.Before(t) {
			return w, true
		}
	}
	return probe.Window{}, false
}

// waitState waits until node i reports state.
func (c *cluster) waitState(i int, state string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if c.state(i) == state {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("drill: %s is %s, not %s, after %v", c.nodes[i].name, c.state(i), state, timeout)
}

// pause sleeps for d or until ctx is done: the demo's pacing, so a person
// can follow the timeline.
func pause(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
