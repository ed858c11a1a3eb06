package proxy

import (
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"lbd/config"
	"lbd/health"
	"lbd/proxy/balance"
)

// ErrNoBackend reports that a pool has no backend that is usable, has room
// and was not already tried.
var ErrNoBackend = errors.New("proxy: no usable backend")

// Backend is a backend as the proxy sees it: the balancer's live state plus
// traffic counters and the connections open to it (to close when draining).
type Backend struct {
	*balance.Backend
	pool *Pool
	ap   netip.AddrPort // the address when it is a literal IP:port

	total    atomic.Uint64
	failures atomic.Uint64 // connect failures
	bytesIn  atomic.Uint64 // client → backend
	bytesOut atomic.Uint64 // backend → client

	mu    sync.Mutex // guards conns and drain
	conns map[Closer]struct{}
	drain *time.Timer
}

// Closer is an open connection that draining may have to cut.
type Closer interface{ Close() error }

// Pools are the pools of the running configuration, by name.
type Pools map[string]*Pool

// Pool is one [[pool]]: backends, the algorithm that picks among them and
// the timeouts that govern connections to them.
type Pool struct {
	cfg      config.Pool
	bal      balance.Balancer
	backends []*Backend
	byBal    map[*balance.Backend]*Backend
	log      *slog.Logger

	health  atomic.Pointer[health.Pool] // passive outlier detection, when set
	panicRR atomic.Uint64               // round robin of panic = "route_all"
}

// SetHealth makes the pool report every connection's outcome to h, which
// judges outliers from real traffic.
func (p *Pool) SetHealth(h *health.Pool) { p.health.Store(h) }

// Report tells the pool's health checker how a connection or request to
// the backend went. Cheap enough for every request.
func (b *Backend) Report(o health.Outcome) {
	if h := b.pool.health.Load(); h != nil {
		h.Report(b.Backend, o)
	}
}

// NewPool builds a pool from its configuration. Backends of prev (the pool
// of the same name before a reload) whose address is kept carry their live
// state and counters over.
func NewPool(cfg config.Pool, prev *Pool, log *slog.Logger) (*Pool, error) {
	p := &Pool{cfg: cfg, byBal: make(map[*balance.Backend]*Backend), log: log.With("pool", cfg.Name)}
	old := map[string]*Backend{}
	if prev != nil {
		for _, b := range prev.backends {
			old[b.Address()] = b
		}
	}
	var bbs []*balance.Backend
	for _, bc := range cfg.Backends {
		b := old[bc.Address]
		if b != nil {
			if err := b.SetWeight(bc.Weight); err != nil {
				return nil, fmt.Errorf("proxy: pool %s: %w", cfg.Name, err)
			}
			if err := b.SetMaxConnections(bc.MaxConnections); err != nil {
				return nil, fmt.Errorf("proxy: pool %s: %w", cfg.Name, err)
			}
		} else {
			bb, err := balance.NewBackend(balance.BackendConfig{Address: bc.Address, Weight: bc.Weight, MaxConnections: bc.MaxConnections})
			if err != nil {
				return nil, fmt.Errorf("proxy: pool %s: %w", cfg.Name, err)
			}
			b = &Backend{Backend: bb, conns: make(map[Closer]struct{})}
			b.ap, _ = netip.ParseAddrPort(bc.Address) // a host name stays invalid: resolved per connection
		}
		b.pool = p
		p.backends = append(p.backends, b)
		p.byBal[b.Backend] = b
		bbs = append(bbs, b.Backend)
	}
	bal, err := balance.New(cfg.Algorithm, bbs)
	if err != nil {
		return nil, fmt.Errorf("proxy: pool %s: %w", cfg.Name, err)
	}
	p.bal = bal
	return p, nil
}

// Name returns the pool's name.
func (p *Pool) Name() string { return p.cfg.Name }

// Config returns the pool's configuration.
func (p *Pool) Config() config.Pool { return p.cfg }

// Backends returns the backends in configuration order.
func (p *Pool) Backends() []*Backend { return p.backends }

// Backend returns the backend with address addr, or nil.
func (p *Pool) Backend(addr string) *Backend {
	for _, b := range p.backends {
		if b.Address() == addr {
			return b
		}
	}
	return nil
}

// Pick returns a usable backend with room for one more connection or
// request, not in ex, and counts it as active: the caller calls Release
// when the connection or request ends. It returns nil when there is none.
func (p *Pool) Pick(key balance.Key, ex *balance.Exclude) *Backend {
	for {
		bb := p.bal.Pick(key, *ex)
		if bb == nil && p.cfg.Panic == "route_all" {
			bb = p.panicPick(ex)
		}
		if bb == nil || !ex.Add(bb) {
			return nil
		}
		if bb.TryInc() {
			return p.byBal[bb]
		}
		// It filled up between Pick and TryInc: try another.
	}
}

// panicPick is `panic = "route_all"`: when no backend is usable, spread
// requests over the ones health checks took out (not those an operator
// drained or disabled), as HAProxy and Envoy do in panic mode, rather than
// answer 503.
func (p *Pool) panicPick(ex *balance.Exclude) *balance.Backend {
	n := len(p.backends)
	start := int(p.panicRR.Add(1))
	for i := 0; i < n; i++ {
		b := p.backends[(start+i)%n].Backend
		if b.State() == balance.StateDown && b.Weight() > 0 && !ex.Has(b) {
			return b
		}
	}
	return nil
}

// Release ends one connection or request counted by Pick.
func (b *Backend) Release() { b.Dec() }

// CountConnect records a new connection or request to the backend and how
// long connecting (or the first byte) took, for least_time.
func (b *Backend) CountConnect(took time.Duration) {
	b.ObserveLatency(took)
	b.total.Add(1)
}

// CountFailure records a failed connect or request.
func (b *Backend) CountFailure() { b.failures.Add(1) }

// CountBytes adds traffic: in is client → backend, out backend → client.
func (b *Backend) CountBytes(in, out uint64) {
	b.bytesIn.Add(in)
	b.bytesOut.Add(out)
}

// Track registers an open connection that draining may have to cut when
// drain_timeout passes; Untrack removes it.
func (b *Backend) Track(c Closer) {
	b.mu.Lock()
	b.conns[c] = struct{}{}
	b.mu.Unlock()
}

// Untrack removes a connection registered with Track.
func (b *Backend) Untrack(c Closer) {
	b.mu.Lock()
	delete(b.conns, c)
	b.mu.Unlock()
}

// stickyBackend returns the backend at addr, counted as active, when it is
// in the pool, usable and has room: a client's backend of last time.
func (p *Pool) stickyBackend(addr string) *Backend {
	b := p.Backend(addr)
	if b == nil || !b.Usable() || !b.TryInc() {
		return nil
	}
	return b
}

// connected records a connection to the backend that took took to open.
func (b *Backend) connected(took time.Duration) {
	b.CountConnect(took)
	b.Report(health.Success)
}

// connectFailed records a connection to the backend that failed to open
// and releases the slot Pick or stickyBackend took.
func (b *Backend) connectFailed() {
	b.Release()
	b.CountFailure()
	b.Report(health.ConnectError)
}

// noBackendErr is the error of a client that no backend could take; last
// is the last connect error, if any.
func noBackendErr(last error) error {
	if last != nil {
		return fmt.Errorf("%w: %w", ErrNoBackend, last)
	}
	return ErrNoBackend
}

// SetState changes a backend's administrative state (lbctl drain, enable,
// disable). Draining keeps the backend's connections for at most the pool's
// drain_timeout, then closes those still open; disable closes none at once.
func (p *Pool) SetState(addr string, s balance.State) error {
	b := p.Backend(addr)
	if b == nil {
		return fmt.Errorf("proxy: pool %s has no backend %s", p.cfg.Name, addr)
	}
	if err := b.Backend.SetState(s); err != nil {
		return err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.drain != nil {
		b.drain.Stop()
		b.drain = nil
	}
	if s == balance.StateDraining {
		b.drain = time.AfterFunc(p.cfg.DrainTimeout.D(), b.cutAll)
	}
	return nil
}

// cutAll closes every connection still open to the backend.
func (b *Backend) cutAll() {
	b.mu.Lock()
	list := make([]Closer, 0, len(b.conns))
	for c := range b.conns {
		list = append(list, c)
	}
	b.mu.Unlock()
	if len(list) > 0 {
		b.pool.log.Info("drain timeout: closing connections", "backend", b.Address(), "connections", len(list))
	}
	for _, c := range list {
		c.Close()
	}
}

// BackendStats are a backend's counters.
type BackendStats struct {
	Total, Failures, BytesIn, BytesOut uint64
}

// Stats returns the backend's counters.
func (b *Backend) Stats() BackendStats {
	return BackendStats{Total: b.total.Load(), Failures: b.failures.Load(), BytesIn: b.bytesIn.Load(), BytesOut: b.bytesOut.Load()}
}
