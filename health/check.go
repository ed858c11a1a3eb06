package health

import (
	"context"
	"log/slog"
	"math/rand/v2"
	"time"
)

// schedule starts every backend's probe when it is due, until Close. It is
// the one goroutine that waits for the probe times of the whole pool: a
// wake-up of the runtime per slot of due probes (see nextProbe), not one
// timer per backend. A "tcp" check of an IP address runs right here with a
// non-blocking connect, which on loopback and to a closed port is over
// when connect(2) returns; any other probe, and a connect still under way,
// goes on in a goroutine of its own, so that a slow or hung backend never
// holds up the others. A backend is queued again only when its probe has
// ended, so its probes never overlap.
func (p *Pool) schedule(w waker) {
	defer p.wg.Done()
	defer w.close()
	stop := context.AfterFunc(p.ctx, w.kick) // Close wakes it up
	defer stop()
	var due []*member
	for p.ctx.Err() == nil {
		p.qmu.Lock()
		due, p.armed = p.queue.popDue(time.Now(), due[:0])
		p.waiting = len(due) == 0
		if p.waiting {
			w.arm(p.armed) // under qmu, so that no later arm undoes a kick of finish
		}
		p.qmu.Unlock()
		if len(due) == 0 {
			w.wait()
			continue
		}
		for _, m := range due {
			p.startProbe(m)
		}
		clear(due)
	}
}

// startProbe begins the probe of m; m is out of the queue.
func (p *Pool) startProbe(m *member) {
	if p.rawTCP && m.raw != nil {
		start := time.Now()
		r, fd, done := startConnect(m.raw)
		if done {
			p.finish(m, r, start, time.Since(start))
			return
		}
		p.wg.Add(1)
		go p.awaitConnect(m, fd, start)
		return
	}
	p.wg.Add(1)
	go p.probeOnce(m)
}

// awaitConnect waits for the raw connect of m that startConnect began.
func (p *Pool) awaitConnect(m *member, fd int, start time.Time) {
	defer p.wg.Done()
	ctx, cancel := context.WithDeadline(p.ctx, start.Add(p.timeout))
	r := waitConnect(ctx, fd, m.raw, p.timeout)
	cancel()
	p.finish(m, r, start, time.Since(start))
}

// probeOnce runs one probe of m through the Prober.
func (p *Pool) probeOnce(m *member) {
	defer p.wg.Done()
	start := time.Now()
	ctx, cancel := context.WithTimeout(p.ctx, p.timeout)
	r := p.prober.Probe(ctx, m.addr)
	cancel()
	p.finish(m, r, start, time.Since(start))
}

// finish judges the probe of m that began at start and queues m's next
// one.
func (p *Pool) finish(m *member, r Result, start time.Time, took time.Duration) {
	if p.ctx.Err() != nil {
		return // Close cut the probe short; its verdict means nothing
	}
	p.record(m, r, start, took)
	if p.observe != nil {
		p.observe(m.addr, r, start)
	}
	now := time.Now()
	p.qmu.Lock()
	m.next = now.Add(nextProbe(now, p.interval, took))
	p.queue.push(m)
	if p.waiting && (p.armed.IsZero() || m.next.Before(p.armed)) {
		p.waiting = false // one kick until schedule looks again
		p.waker.kick()
	}
	p.qmu.Unlock()
}

// nextProbe returns how long after now, the end of a probe that took
// took, the next probe starts: one interval after this one began, ±4 % so
// that probes do not fall into step; a probe that outlasted the interval is
// followed at the next interval boundary. The start is then rounded up to
// a multiple of interval/100 (when that is over 1 ms), so that the probes
// of many backends share wake-ups of schedule instead of each paying its
// own (a wake-up costs about as much CPU as a few tcp probes,
// BenchmarkProbeCPU), and they still spread over 100 slots.
func nextProbe(now time.Time, interval, took time.Duration) time.Duration {
	d := interval + randDuration(interval*8/100+1) - interval*4/100 - took
	if d < 0 {
		d = interval - took%interval
	}
	if slot := interval / 100; slot > time.Millisecond {
		at := now.Add(d)
		if t := at.Truncate(slot); t.Before(at) {
			at = t.Add(slot)
		}
		d = at.Sub(now)
	}
	return d
}

// randDuration returns a random duration in [0, d), or 0.
func randDuration(d time.Duration) time.Duration {
	if d <= 0 {
		return 0
	}
	return rand.N(d)
}

// record feeds one probe's result through the state machine.
func (p *Pool) record(m *member, r Result, at time.Time, took time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	old := m.state
	p.change(m, at, func() {
		m.last, m.lastCheck, m.lastLatency = r, at, took
		first := !m.checked
		m.checked = true
		if r.OK {
			m.okRun++
			m.failRun = 0
		} else {
			m.failRun++
			m.okRun = 0
		}
		switch {
		case r.OK && m.state == Degraded:
			m.state = Healthy
		case r.OK && m.state == Unhealthy && m.okRun >= p.rise:
			m.state = Healthy
		case !r.OK && m.state != Unhealthy && (first || m.failRun >= p.fall):
			m.state = Unhealthy
		case !r.OK && m.state == Healthy:
			m.state = Degraded
		}
	})
	if m.state == old {
		return
	}
	m.transitions++
	level := slog.LevelInfo
	if m.state != Healthy {
		level = slog.LevelWarn
	}
	p.log.Log(context.Background(), level, "backend health changed", "backend", m.addr,
		"from", old.String(), "to", m.state.String(), "check", r.Text, "latency", took.Round(time.Microsecond),
		"successes", m.okRun, "failures", m.failRun)
}
