package health

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"lbd/config"
	"lbd/proxy/balance"
)

// Pool judges the backends of one [[pool]]: it runs the active checks,
// takes the proxy's outlier reports and ramps recovered backends up. Build
// it with [NewPool], then call Start; Close stops every goroutine it owns.
// All methods are safe for concurrent use.
type Pool struct {
	name      string
	log       *slog.Logger
	prober    Prober // nil: type "none"
	interval  time.Duration
	timeout   time.Duration
	rise      int
	fall      int
	slowStart time.Duration
	rampStep  time.Duration
	outlier   outlierConfig

	members   []*member
	byBackend map[*balance.Backend]*member // read-only after NewPool

	healthy atomic.Int32 // backends in rotation as far as health goes

	mu        sync.Mutex // guards the fields below and members' guarded fields
	available bool       // healthy > 0, as last published
	watchers  []chan bool
	ejected   int // backends ejected now
	started   bool
	closed    bool

	kick      chan struct{} // wakes run: an ejection or a ramp began
	ctx       context.Context
	cancel    context.CancelFunc
	wg        sync.WaitGroup
	closeOnce sync.Once
}

// member is one backend of the pool.
type member struct {
	b    *balance.Backend
	addr string

	// Hot path (Report): atomics only.
	consecErrors atomic.Int64
	errs         [numOutcomes]atomic.Uint64
	ejectedNow   atomic.Bool // mirrors ejected, read without the lock

	// Guarded by Pool.mu.
	state        State
	checked      bool // a probe has been judged
	okRun        int
	failRun      int
	last         Result
	lastLatency  time.Duration
	lastCheck    time.Time
	ejected      bool
	until        time.Time
	ejections    int
	backoff      int // ejection_time multiplier of the next ejection, minus one
	lastEjectEnd time.Time
	refusedLog   time.Time // last "not ejected" log line
	ramping      bool
	rampStart    time.Time
}

// inRotation reports whether health lets the backend take traffic.
func (m *member) inRotation() bool { return m.state != Unhealthy && !m.ejected }

// An Option changes how NewPool builds a Pool.
type Option func(*Pool)

// WithProber replaces the active check of an "http", "tcp" or "tls" pool
// by pr (a custom check, or a fake in tests). Pools of type "none" run no
// checks either way.
func WithProber(pr Prober) Option {
	return func(p *Pool) {
		if p.prober != nil {
			p.prober = pr
		}
	}
}

// NewPool builds the health judge of pool cfg (its name, slow_start,
// [pool.health] and [pool.outlier]; cfg.Backends is not read) over
// backends, which the proxy's balancer reads. From now on the Pool owns
// the backends' Down state, ejection and weight permille: a backend that is
// already Down starts UNHEALTHY, a leftover ejection is lifted and an
// unfinished ramp goes on from where it stands. A nil log discards.
func NewPool(cfg config.Pool, backends []*balance.Backend, log *slog.Logger, opts ...Option) (*Pool, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	p := &Pool{
		name:      cfg.Name,
		log:       log.With("pool", cfg.Name),
		interval:  cfg.Health.Interval.D(),
		timeout:   cfg.Health.Timeout.D(),
		rise:      cfg.Health.Rise,
		fall:      cfg.Health.Fall,
		slowStart: cfg.SlowStart.D(),
		byBackend: make(map[*balance.Backend]*member, len(backends)),
		kick:      make(chan struct{}, 1),
	}
	if err := p.configure(cfg); err != nil {
		return nil, fmt.Errorf("health: pool %q: %w", cfg.Name, err)
	}
	for _, o := range opts {
		o(p)
	}
	now := time.Now()
	for i, b := range backends {
		if b == nil {
			return nil, fmt.Errorf("health: pool %q: backend %d is nil", cfg.Name, i)
		}
		if p.byBackend[b] != nil {
			return nil, fmt.Errorf("health: pool %q: backend %s is listed twice", cfg.Name, b.Address())
		}
		m := &member{b: b, addr: b.Address()}
		if b.State() == balance.StateDown && p.prober != nil {
			m.state = Unhealthy
		}
		b.SetEjected(false)
		if pm := b.WeightPermille(); pm < 1000 && p.slowStart > 0 {
			m.ramping = true
			m.rampStart = now.Add(-time.Duration(float64(p.slowStart) * float64(max(pm-100, 0)) / 900))
		} else if pm < 1000 {
			_ = b.SetWeightPermille(1000)
		}
		p.syncBackend(m)
		p.members = append(p.members, m)
		p.byBackend[b] = m
	}
	p.ctx, p.cancel = context.WithCancel(context.Background())
	n := p.count()
	p.healthy.Store(int32(n))
	p.available = n > 0
	return p, nil
}

// configure checks and copies the settings NewPool does not take verbatim.
func (p *Pool) configure(cfg config.Pool) error {
	h := cfg.Health
	pr, err := NewProber(h)
	if err != nil {
		return err
	}
	p.prober = pr
	if pr != nil {
		if p.interval <= 0 {
			return fmt.Errorf("health interval %s is not positive", h.Interval)
		}
		if p.rise < 1 || p.fall < 1 {
			return fmt.Errorf("health rise %d and fall %d must be at least 1", p.rise, p.fall)
		}
	}
	if p.slowStart < 0 {
		return fmt.Errorf("slow_start %s is negative", cfg.SlowStart)
	}
	p.rampStep = min(p.slowStart/20, time.Second)
	p.rampStep = max(p.rampStep, 10*time.Millisecond)
	return p.outlier.set(cfg.Outlier)
}

// Name returns the pool's name.
func (p *Pool) Name() string { return p.name }

// Start begins the checks and the ejection and slow-start timers. It does
// nothing after the first call or after Close.
func (p *Pool) Start() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.started || p.closed {
		return
	}
	p.started = true
	p.wg.Add(1)
	go p.run()
	if p.prober == nil {
		return
	}
	for _, m := range p.members {
		p.wg.Add(1)
		go p.probeLoop(m)
	}
}

// Close stops the checks and timers, waits for their goroutines and closes
// the channels Watch returned. Backends keep the state they have.
func (p *Pool) Close() {
	p.closeOnce.Do(func() {
		p.mu.Lock()
		p.closed = true
		for _, w := range p.watchers {
			close(w)
		}
		p.watchers = nil
		p.mu.Unlock()
		p.cancel()
		p.wg.Wait()
		if c, ok := p.prober.(interface{ close() }); ok {
			c.close()
		}
	})
}

// Healthy returns how many backends are in rotation as far as health is
// concerned: not UNHEALTHY and not ejected. Operator states (drain,
// disable) do not count. Zero is the proxy's cue for its panic setting.
func (p *Pool) Healthy() int { return int(p.healthy.Load()) }

// Available reports whether the pool has at least one healthy backend.
func (p *Pool) Available() bool { return p.Healthy() > 0 }

// Watch returns a channel that holds whether the pool has at least one
// healthy backend: the current value at once, then each change. A slow
// reader misses intermediate values but always gets the latest one, as a
// VRRP pool track wants. The channel is closed by Close.
func (p *Pool) Watch() <-chan bool {
	ch := make(chan bool, 1)
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		close(ch)
		return ch
	}
	ch <- p.available
	p.watchers = append(p.watchers, ch)
	return ch
}

// recount refreshes Healthy and publishes a change of availability. It
// runs with p.mu held.
func (p *Pool) recount() {
	n := p.count()
	p.healthy.Store(int32(n))
	avail := n > 0
	if avail == p.available {
		return
	}
	p.available = avail
	if avail {
		p.log.Info("pool has a healthy backend again", "healthy", n)
	} else {
		p.log.Warn("pool has no healthy backend", "backends", len(p.members))
	}
	for _, w := range p.watchers {
		select { // only this goroutine sends (p.mu), so after the drain the send cannot block
		case <-w:
		default:
		}
		w <- avail
	}
}

// count returns how many backends are in rotation; p.mu is held.
func (p *Pool) count() int {
	n := 0
	for _, m := range p.members {
		if m.inRotation() {
			n++
		}
	}
	return n
}

// change applies fn to m's guarded fields, then brings the backend, the
// slow-start ramp and the pool's count in line. It runs with p.mu held.
func (p *Pool) change(m *member, now time.Time, fn func()) {
	was := m.inRotation()
	fn()
	is := m.inRotation()
	switch {
	case !was && is && p.slowStart > 0:
		// Lower the weight before the backend re-enters, never after.
		_ = m.b.SetWeightPermille(100)
		m.ramping, m.rampStart = true, now
		p.wake()
	case was && !is:
		m.ramping = false // starts again from 10 % on return
	}
	p.syncBackend(m)
	if was != is {
		p.recount()
	}
}

// syncBackend sets the backend's Up/Down state and ejection to match m.
// Draining and Disabled belong to the operator and are left alone.
func (p *Pool) syncBackend(m *member) {
	want := balance.StateUp
	if m.state == Unhealthy {
		want = balance.StateDown
	}
	if cur := m.b.State(); cur != want && (cur == balance.StateUp || cur == balance.StateDown) {
		_ = m.b.SetState(want)
	}
	if m.b.Ejected() != m.ejected {
		m.b.SetEjected(m.ejected)
	}
	m.ejectedNow.Store(m.ejected)
}

// wake makes run look at ejections and ramps again.
func (p *Pool) wake() {
	select {
	case p.kick <- struct{}{}:
	default:
	}
}

// run ends ejections and steps slow-start ramps, sleeping until the next
// one is due.
func (p *Pool) run() {
	defer p.wg.Done()
	t := time.NewTimer(time.Hour)
	defer t.Stop()
	for {
		p.mu.Lock()
		next := p.tick(time.Now())
		p.mu.Unlock()
		if next.IsZero() {
			t.Stop()
		} else {
			t.Reset(time.Until(next))
		}
		select {
		case <-p.ctx.Done():
			return
		case <-p.kick:
		case <-t.C:
		}
	}
}

// tick ends the ejections that are due and steps every ramp; it returns
// when it wants to run again (zero: nothing pending). p.mu is held.
func (p *Pool) tick(now time.Time) time.Time {
	var next time.Time
	due := func(t time.Time) {
		if next.IsZero() || t.Before(next) {
			next = t
		}
	}
	for _, m := range p.members {
		if m.ejected {
			if now.Before(m.until) {
				due(m.until)
			} else {
				p.endEjection(m, now)
			}
		}
		if m.ramping {
			pm := balance.SlowStartPermille(now.Sub(m.rampStart), p.slowStart)
			_ = m.b.SetWeightPermille(pm)
			if pm < 1000 {
				due(now.Add(p.rampStep))
			} else {
				m.ramping = false
				p.log.Debug("slow start done", "backend", m.addr)
			}
		}
	}
	return next
}

// Snapshot returns the status of every backend, in the order NewPool got
// them.
func (p *Pool) Snapshot() []BackendHealth {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]BackendHealth, len(p.members))
	for i, m := range p.members {
		h := BackendHealth{
			Address:           m.addr,
			State:             m.state,
			ConsecutiveOK:     m.okRun,
			ConsecutiveFail:   m.failRun,
			LastResult:        m.last.Text,
			LastLatency:       m.lastLatency,
			LastCheck:         m.lastCheck,
			ConsecutiveErrors: int(m.consecErrors.Load()),
			Errors: Errors{
				ConnectErrors: m.errs[ConnectError].Load(),
				Resets:        m.errs[Reset].Load(),
				Status5xx:     m.errs[Status5xx].Load(),
				Timeouts:      m.errs[Timeout].Load(),
			},
			Ejections:       m.ejections,
			Ejected:         m.ejected,
			WeightPermille:  m.b.WeightPermille(),
			EffectiveWeight: m.b.EffectiveWeight(),
		}
		if m.ejected {
			h.EjectedUntil = m.until
		}
		out[i] = h
	}
	return out
}
