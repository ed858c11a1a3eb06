package balance

import (
	"math/rand/v2"
	"time"
)

// leastTime picks the lowest (latency+1ns) × (active+1) / weight, where
// latency is the backend's EWMA (see ObserveLatency) decayed toward zero
// while the backend gets no samples, as nginx's least_time weighs average
// response time with active connections. A backend never observed counts
// as 0 ns, so new backends are measured first; with no samples at all the
// algorithm is least_conn. Ties are broken at random.
type leastTime struct{ pool }

var _ Balancer = (*leastTime)(nil)

func newLeastTime(bs []*Backend) *leastTime {
	l := &leastTime{}
	l.init(LeastTime, bs, nil)
	return l
}

// Pick implements Balancer.
func (l *leastTime) Pick(_ Key, ex Exclude) *Backend {
	bs := l.backends
	n := len(bs)
	if n == 0 {
		return nil
	}
	now := time.Now().UnixNano()
	var best *Backend
	var bestCost, bestW float64 // the best score is bestCost / bestW
	start := rand.IntN(n)
	for i := 0; i < n; i++ {
		j := start + i
		if j >= n {
			j -= n
		}
		b := bs[j]
		w := b.eff.Load()
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
		cost := (b.latencyAt(now) + 1) * float64(max(a, 0)+1)
		if best == nil || cost*bestW < bestCost*float64(w) {
			best, bestCost, bestW = b, cost, float64(w)
		}
	}
	return best
}
