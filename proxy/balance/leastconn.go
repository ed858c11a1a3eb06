package balance

import (
	"math/bits"
	"math/rand/v2"
)

// leastConn picks the backend with the fewest (active+1)/weight, as
// HAProxy's leastconn: with equal counts the heavier backend wins, and
// backends that tie are chosen at random. It scans all backends on every
// pick (no table), reading live counters.
type leastConn struct{ pool }

var _ Balancer = (*leastConn)(nil)

func newLeastConn(bs []*Backend) *leastConn {
	l := &leastConn{}
	l.init(LeastConn, bs, nil)
	return l
}

// Pick implements Balancer.
func (l *leastConn) Pick(_ Key, ex Exclude) *Backend {
	return leastLoaded(l.backends, &ex, false)
}

// leastLoaded returns the backend with room and the lowest (active+1)/w,
// where w is the effective weight, times the agent percentage when
// withAgent is set. The scan starts at a random backend so that ties are
// broken at random.
func leastLoaded(bs []*Backend, ex *Exclude, withAgent bool) *Backend {
	n := len(bs)
	if n == 0 {
		return nil
	}
	var best *Backend
	var bestLoad, bestW uint64
	start := rand.IntN(n)
	for i := 0; i < n; i++ {
		j := start + i
		if j >= n {
			j -= n
		}
		b := bs[j]
		w := b.eff.Load()
		if withAgent {
			w *= int64(b.agent.Load())
		}
		if w <= 0 {
			continue
		}
		a := b.active.Load()
		if m := b.maxConns.Load(); m > 0 && a >= m {
			continue
		}
		if ex.n > 0 && ex.Has(b) {
			continue
		}
		load := uint64(max(a, 0)) + 1
		if best == nil || less(load, uint64(w), bestLoad, bestW) {
			best, bestLoad, bestW = b, load, uint64(w)
		}
	}
	return best
}

// less reports whether a1/w1 < a2/w2, exactly (128-bit cross products).
func less(a1, w1, a2, w2 uint64) bool {
	h1, l1 := bits.Mul64(a1, w2)
	h2, l2 := bits.Mul64(a2, w1)
	return h1 < h2 || (h1 == h2 && l1 < l2)
}
