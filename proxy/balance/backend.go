package balance

import (
	"fmt"
	"sync"
	"sync/atomic"
)

// MaxWeight is the largest configured weight, as in the [[pool.backend]]
// weight key (HAProxy's server weight goes to 256 as well).
const MaxWeight = 256

// State is a backend's administrative or health state.
type State uint32

// Backend states. Only StateUp takes new requests.
const (
	StateUp       State = iota // in rotation
	StateDraining              // keeps its connections, takes no new ones (lbctl drain)
	StateDisabled              // out of rotation by the operator (lbctl disable)
	StateDown                  // failed its health checks
)

// String returns the name lbctl and the status page show.
func (s State) String() string {
	switch s {
	case StateUp:
		return "up"
	case StateDraining:
		return "draining"
	case StateDisabled:
		return "disabled"
	case StateDown:
		return "down"
	}
	return fmt.Sprintf("state(%d)", uint32(s))
}

// BackendConfig is the static part of a backend, from [[pool.backend]].
type BackendConfig struct {
	Address        string // host:port; also the backend's identity for maglev
	Weight         int    // 0..256; 0 takes no new traffic
	MaxConnections int    // 0: unlimited
}

// Backend is the live state of one backend that every algorithm reads.
// A new Backend is Up, at full weight (no slow start) and at 100 % agent
// capacity. All methods are safe for concurrent use; setters are
// serialised per backend, readers only load atomics.
type Backend struct {
	address string

	// Read by every Pick, written only when configuration or health changes.
	eff      atomic.Int64  // weight × permille while usable, else 0
	maxConns atomic.Int64  // 0: unlimited
	weight   atomic.Int32  // configured, 0..256
	permille atomic.Int32  // slow start, 0..1000
	agent    atomic.Int32  // agent-reported capacity, 0..100 percent
	state    atomic.Uint32 // State
	ejected  atomic.Bool   // outlier detection
	owner    atomic.Pointer[atomic.Uint64]
	mu       sync.Mutex // serialises setters so that eff matches the fields

	_ [64]byte // keep the counters below off the cache line read by picks

	active  atomic.Int64 // connections or requests in flight
	ewma    atomic.Int64 // latency EWMA in ns, as of lastObs
	lastObs atomic.Int64 // unix ns of the latest ObserveLatency
}

// NewBackend returns an Up backend at full weight.
func NewBackend(c BackendConfig) (*Backend, error) {
	if c.Address == "" {
		return nil, fmt.Errorf("balance: backend address is empty")
	}
	if err := checkWeight(c.Weight); err != nil {
		return nil, fmt.Errorf("balance: backend %s: %w", c.Address, err)
	}
	if c.MaxConnections < 0 {
		return nil, fmt.Errorf("balance: backend %s: max_connections %d is negative", c.Address, c.MaxConnections)
	}
	b := &Backend{address: c.Address}
	b.weight.Store(int32(c.Weight))
	b.permille.Store(1000)
	b.agent.Store(100)
	b.maxConns.Store(int64(c.MaxConnections))
	b.recompute()
	return b, nil
}

func checkWeight(w int) error {
	if w < 0 || w > MaxWeight {
		return fmt.Errorf("weight %d out of range 0..%d", w, MaxWeight)
	}
	return nil
}

// Address returns the configured host:port.
func (b *Backend) Address() string { return b.address }

// String returns the address.
func (b *Backend) String() string { return b.address }

// State returns the current state.
func (b *Backend) State() State { return State(b.state.Load()) }

// Ejected reports whether outlier detection has ejected the backend.
func (b *Backend) Ejected() bool { return b.ejected.Load() }

// Weight returns the configured weight.
func (b *Backend) Weight() int { return int(b.weight.Load()) }

// WeightPermille returns the slow-start factor in permille.
func (b *Backend) WeightPermille() int { return int(b.permille.Load()) }

// AgentPercent returns the capacity the backend's agent last reported.
func (b *Backend) AgentPercent() int { return int(b.agent.Load()) }

// MaxConnections returns the connection limit, 0 for none.
func (b *Backend) MaxConnections() int { return int(b.maxConns.Load()) }

// Active returns the number of connections or requests in flight.
func (b *Backend) Active() int { return int(b.active.Load()) }

// EffectiveWeight returns weight × slow-start permille while the backend is
// usable, else 0. Agent percentages are applied only by the resource
// algorithm.
func (b *Backend) EffectiveWeight() int { return int(b.eff.Load()) }

// Usable reports whether the backend may take new requests, ignoring
// max_connections.
func (b *Backend) Usable() bool { return b.eff.Load() > 0 }

// SetState changes the state.
func (b *Backend) SetState(s State) error {
	if s > StateDown {
		return fmt.Errorf("balance: backend %s: unknown state %d", b.address, uint32(s))
	}
	b.set(func() bool { return b.state.Swap(uint32(s)) != uint32(s) })
	return nil
}

// SetEjected ejects the backend from rotation (true) or lets it back in.
// Ejection is kept apart from State so that a passing health check does not
// end an outlier ejection early.
func (b *Backend) SetEjected(e bool) {
	b.set(func() bool { return b.ejected.Swap(e) != e })
}

// SetWeight changes the configured weight (0..256).
func (b *Backend) SetWeight(w int) error {
	if err := checkWeight(w); err != nil {
		return fmt.Errorf("balance: backend %s: %w", b.address, err)
	}
	b.set(func() bool { return b.weight.Swap(int32(w)) != int32(w) })
	return nil
}

// SetWeightPermille sets the slow-start factor, 0..1000 (see
// [SlowStartPermille]).
func (b *Backend) SetWeightPermille(p int) error {
	if p < 0 || p > 1000 {
		return fmt.Errorf("balance: backend %s: weight permille %d out of range 0..1000", b.address, p)
	}
	b.set(func() bool { return b.permille.Swap(int32(p)) != int32(p) })
	return nil
}

// SetAgentPercent records the capacity the backend's load agent reports, as
// HAProxy's agent-check reply "75%": the resource algorithm scales the
// backend's weight by it, 0 takes no new requests there. Other algorithms
// ignore it.
func (b *Backend) SetAgentPercent(p int) error {
	if p < 0 || p > 100 {
		return fmt.Errorf("balance: backend %s: agent percent %d out of range 0..100", b.address, p)
	}
	b.set(func() bool { return b.agent.Swap(int32(p)) != int32(p) })
	return nil
}

// SetMaxConnections changes the connection limit, 0 for none.
func (b *Backend) SetMaxConnections(n int) error {
	if n < 0 {
		return fmt.Errorf("balance: backend %s: max_connections %d is negative", b.address, n)
	}
	b.maxConns.Store(int64(n))
	return nil
}

// set applies one change under b.mu, recomputes the effective weight and,
// when something changed, marks the owning balancer's tables stale.
func (b *Backend) set(change func() bool) {
	b.mu.Lock()
	changed := change()
	if changed {
		b.recompute()
	}
	b.mu.Unlock()
	if changed {
		if e := b.owner.Load(); e != nil {
			e.Add(1)
		}
	}
}

func (b *Backend) recompute() {
	var eff int64
	if State(b.state.Load()) == StateUp && !b.ejected.Load() {
		eff = int64(b.weight.Load()) * int64(b.permille.Load())
	}
	b.eff.Store(eff)
}

// Inc counts a new connection or request.
func (b *Backend) Inc() { b.active.Add(1) }

// TryInc counts a new connection unless the backend is at max_connections.
// Pick skips full backends, but two concurrent picks may both see the last
// free place; a proxy that must never exceed the limit calls TryInc and, on
// false, picks again with this backend excluded.
func (b *Backend) TryInc() bool {
	for {
		a, m := b.active.Load(), b.maxConns.Load()
		if m > 0 && a >= m {
			return false
		}
		if b.active.CompareAndSwap(a, a+1) {
			return true
		}
	}
}

// Dec counts a finished connection or request. Extra calls do not take the
// count below zero.
func (b *Backend) Dec() {
	for {
		a := b.active.Load()
		if a <= 0 || b.active.CompareAndSwap(a, a-1) {
			return
		}
	}
}

// room reports whether the backend may take a new request: usable, below
// max_connections and not excluded.
func (b *Backend) room(ex *Exclude) bool {
	if b.eff.Load() <= 0 {
		return false
	}
	if m := b.maxConns.Load(); m > 0 && b.active.Load() >= m {
		return false
	}
	return !ex.Has(b)
}
