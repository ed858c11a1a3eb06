package balance

import (
	"math/rand/v2"
	"sync"
	"sync/atomic"
)

// pool is the part every Balancer shares: the backends, the change counter
// their setters bump, and the current table.
type pool struct {
	algorithm string
	backends  []*Backend
	build     func([]*Backend) *view // nil: the algorithm reads live state only

	epoch atomic.Uint64 // bumped by Backend setters
	view  atomic.Pointer[view]
	mu    sync.Mutex // held while building a view
}

// view is an immutable table built from the backends' state at one epoch.
// Each algorithm fills the fields it uses.
type view struct {
	epoch   uint64
	members []*Backend // the backends the table covers
	pos     []int32    // pos[i]: index of members[i] in pool.backends
	cum     []uint64   // cumulative weights of members (random, two_choices, ip_hash)
	seq     []int32    // one smooth WRR period, indexes into members
	table   []int32    // maglev lookup table, indexes into members
}

func (p *pool) init(algorithm string, bs []*Backend, build func([]*Backend) *view) {
	p.algorithm, p.backends, p.build = algorithm, bs, build
	for _, b := range bs {
		b.owner.Store(&p.epoch)
	}
	if build != nil {
		p.Update()
	}
}

// Algorithm implements Balancer.
func (p *pool) Algorithm() string { return p.algorithm }

// Backends implements Balancer.
func (p *pool) Backends() []*Backend { return append([]*Backend(nil), p.backends...) }

// Update implements Balancer.
func (p *pool) Update() {
	if p.build == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.rebuildLocked()
}

// current returns the table, rebuilding it first when a backend changed and
// no other goroutine is already rebuilding it.
func (p *pool) current() *view {
	v := p.view.Load()
	if v.epoch == p.epoch.Load() || !p.mu.TryLock() {
		return v
	}
	defer p.mu.Unlock()
	return p.rebuildLocked()
}

func (p *pool) rebuildLocked() *view {
	// Load the epoch before reading backend state: a setter writes state
	// first and bumps the epoch after, so a change made during the build
	// leaves the new view stale and it is built again.
	e := p.epoch.Load()
	if v := p.view.Load(); v != nil && v.epoch == e {
		return v
	}
	v := p.build(p.backends)
	v.epoch = e
	p.view.Store(v)
	return v
}

// scan returns the first backend with room in pool order from start on,
// wrapping around: the fallback when an algorithm's choice is unusable.
func (p *pool) scan(start int, ex *Exclude) *Backend {
	n := len(p.backends)
	if n == 0 {
		return nil
	}
	start %= n
	for i := 0; i < n; i++ {
		j := start + i
		if j >= n {
			j -= n
		}
		if b := p.backends[j]; b.room(ex) {
			return b
		}
	}
	return nil
}

// scanRandom is scan from a random start.
func (p *pool) scanRandom(ex *Exclude) *Backend {
	if len(p.backends) == 0 {
		return nil
	}
	return p.scan(rand.IntN(len(p.backends)), ex)
}

// usable collects the backends with weight(b) > 0 and their weights.
func usable(bs []*Backend, weight func(*Backend) uint64) (*view, []uint64) {
	v := &view{}
	var ws []uint64
	for i, b := range bs {
		if w := weight(b); w > 0 {
			v.members = append(v.members, b)
			v.pos = append(v.pos, int32(i))
			ws = append(ws, w)
		}
	}
	return v, ws
}

func effWeight(b *Backend) uint64 { return uint64(max(b.eff.Load(), 0)) }

// buildCumulative is the table of weighted random and two_choices: the
// usable backends and their cumulative effective weights.
func buildCumulative(bs []*Backend) *view {
	v, ws := usable(bs, effWeight)
	v.cum = cumulate(ws)
	return v
}

func cumulate(ws []uint64) []uint64 {
	cum := make([]uint64, len(ws))
	var sum uint64
	for i, w := range ws {
		sum += w
		cum[i] = sum
	}
	return cum
}

// sample returns the index of the member whose cumulative-weight interval
// holds r, for r < total: binary search, no allocation.
func (v *view) sample(r uint64) int {
	lo, hi := 0, len(v.cum)-1
	for lo < hi {
		mid := int(uint(lo+hi) >> 1)
		if v.cum[mid] > r {
			hi = mid
		} else {
			lo = mid + 1
		}
	}
	return lo
}

// total returns the sum of the members' weights.
func (v *view) total() uint64 {
	if len(v.cum) == 0 {
		return 0
	}
	return v.cum[len(v.cum)-1]
}
