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
	name         string
	log          *slog.Logger
	prober       Prober // nil: type "none"
	rawTCP       bool   // prober is the built-in "tcp" check: schedule connects to IP addresses itself
	customProber bool   // WithProber replaced the built-in check
	interval     time.Duration
	timeout      time.Duration
	rise         int
	fall         int
	slowStart    time.Duration
	rampStep     time.Duration
	outlier      outlierConfig

	members   []*member
	byBackend map[*balance.Backend]*member // read-only after NewPool
	agents    []*agent                     // load agents (algorithm resource); each touched by one ask at a time

	agentEvery time.Duration // tests: how often agents are asked; 0: agentInterval

	healthy atomic.Int32 // backends in rotation as far as health goes

	mu        sync.Mutex // guards the fields below and members' guarded fields
	available bool       // healthy > 0, as last published
	watchers  []chan bool
	ejected   int // backends ejected now
	started   bool
	closed    bool

	kick chan struct{} // wakes run: an ejection or a ramp began

	qmu     sync.Mutex // guards the fields below and members' next
	queue   probeQueue // backends waiting for their next probe
	armed   time.Time  // when schedule wakes up next (zero: never)
	waiting bool       // schedule waits for armed or a kick of waker
	waker   waker      // what schedule sleeps on; set by Start

	observe func(addr string, r Result, start time.Time) // tests: sees every judged probe

	ctx       context.Context
	cancel    context.CancelFunc
	wg        sync.WaitGroup
	closeOnce sync.Once
}

// member is one backend of the pool.
type member struct {
	b    *balance.Backend
	addr string
	raw  *rawAddr // addr for the raw connect path; nil: not an IP address

	next time.Time // when the next probe is due; guarded by Pool.qmu

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
	transitions  int // health state changes so far
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
			p.prober, p.customProber = pr, true
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
	if tp, ok := p.prober.(*tcpProber); ok && !tp.tls {
		p.rawTCP = true
	}
	seen := make(map[*balance.Backend]bool, len(backends))
	for i, b := range backends { // check them all before changing any
		if b == nil {
			return nil, fmt.Errorf("health: pool %q: backend %d is nil", cfg.Name, i)
		}
		if seen[b] {
			return nil, fmt.Errorf("health: pool %q: backend %s is listed twice", cfg.Name, b.Address())
		}
		seen[b] = true
	}
	now := time.Now()
	for _, b := range backends {
		m := &member{b: b, addr: b.Address()}
		if p.rawTCP {
			m.raw = parseRawAddr(m.addr)
		}
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
	p.agents = agents(cfg, backends)
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
	if len(p.agents) > 0 {
		p.wg.Add(1)
		go p.runAgents()
	}
	if p.prober == nil {
		return
	}
	now := time.Now()
	w := p.newWaker()
	p.qmu.Lock()
	p.waker = w
	for _, m := range p.members {
		m.next = now.Add(randDuration(p.interval)) // spread the first probes over one interval
		p.queue.push(m)
	}
	p.qmu.Unlock()
	p.wg.Add(1)
	go p.schedule(w)
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
	})
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
			Transitions:     m.transitions,
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
