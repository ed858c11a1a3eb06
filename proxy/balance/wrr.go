package balance

import (
	"slices"
	"sync/atomic"
)

// weightedRoundRobin is nginx's smooth weighted round robin. Instead of
// running nginx's loop under a lock on every pick, it precomputes one period
// of the sequence that loop produces and walks it with an atomic counter.
type weightedRoundRobin struct {
	pool
	_    [64]byte // the counter is written by every pick: own cache line
	next atomic.Uint64
	_    [56]byte
}

var _ Balancer = (*weightedRoundRobin)(nil)

func newWeightedRoundRobin(bs []*Backend) *weightedRoundRobin {
	r := &weightedRoundRobin{}
	r.init(WeightedRoundRobin, bs, func(bs []*Backend) *view { return buildSmooth(bs, effWeight) })
	return r
}

// Pick implements Balancer.
func (r *weightedRoundRobin) Pick(_ Key, ex Exclude) *Backend {
	return r.pickSeq(r.current(), r.next.Add(1)-1, &ex)
}

// pickSeq returns the n-th entry of the view's period or, when that backend
// has no room, the next one with room in pool order.
func (p *pool) pickSeq(v *view, n uint64, ex *Exclude) *Backend {
	if len(v.seq) == 0 {
		return p.scanRandom(ex)
	}
	i := v.seq[n%uint64(len(v.seq))]
	if b := v.members[i]; b.room(ex) {
		return b
	}
	return p.scan(int(v.pos[i])+1, ex)
}

const (
	// maxPeriod caps the smooth WRR period. Effective weights are divided
	// by their greatest common divisor first, so configured weights alone
	// (at most 256 per backend) stay exact up to 256 backends at weight 256
	// or 65536 at weight 1; beyond that, or with slow-start fractions, they
	// are scaled down to sum to about maxPeriod (less when there are more
	// than 128 distinct weights, see maxBuildSteps), which moves a
	// backend's share by at most one slot of the period.
	maxPeriod = 1 << 16
	// maxBuildSteps bounds the work of one build: period × distinct weights.
	maxBuildSteps = 1 << 23
)

// buildSmooth builds the smooth WRR table from the backends with weight > 0.
func buildSmooth(bs []*Backend, weight func(*Backend) uint64) *view {
	v, ws := usable(bs, weight)
	v.seq = smoothSequence(ws)
	return v
}

// smoothSequence returns one period of nginx's smooth weighted round robin
// (ngx_http_upstream_get_peer) for weights ws, all > 0. nginx, per pick,
// adds each weight to its peer's current weight, takes the peer with the
// largest current weight (the first one on ties) and subtracts the total
// from it. After s picks a peer that was chosen p times holds s×w − total×p,
// so peers of equal weight are taken in list order, round after round; the
// loop below tracks one entry per distinct weight instead of one per peer.
func smoothSequence(ws []uint64) []int32 {
	if len(ws) == 0 {
		return nil
	}
	ws = reduceWeights(ws)
	type group struct {
		w       int64
		members []int32 // ascending
		picks   int64
	}
	byWeight := map[uint64]*group{}
	var groups []*group
	var total int64
	for i, w := range ws {
		g := byWeight[w]
		if g == nil {
			g = &group{w: int64(w)}
			byWeight[w] = g
			groups = append(groups, g)
		}
		g.members = append(g.members, int32(i))
		total += int64(w)
	}
	seq := make([]int32, total)
	for s := int64(1); s <= total; s++ {
		var best *group
		var bestVal int64
		var bestHead int32
		for _, g := range groups {
			m := int64(len(g.members))
			head := g.members[g.picks%m]
			val := s*g.w - total*(g.picks/m)
			if best == nil || val > bestVal || (val == bestVal && head < bestHead) {
				best, bestVal, bestHead = g, val, head
			}
		}
		seq[s-1] = bestHead
		best.picks++
	}
	return seq
}

// reduceWeights divides ws by their greatest common divisor and, if the
// period or the build work would exceed the limits, scales them down.
func reduceWeights(ws []uint64) []uint64 {
	ws = divideGCD(slices.Clone(ws))
	var total uint64
	distinct := map[uint64]bool{}
	for _, w := range ws {
		total += w
		distinct[w] = true
	}
	limit := min(uint64(maxPeriod), uint64(maxBuildSteps)/uint64(len(distinct)))
	if total <= limit {
		return ws
	}
	for i, w := range ws {
		// Round to nearest; every usable backend keeps at least one slot.
		ws[i] = max(1, (w*limit+total/2)/total)
	}
	return divideGCD(ws)
}

func divideGCD(ws []uint64) []uint64 {
	var g uint64
	for _, w := range ws {
		g = gcd(g, w)
	}
	if g > 1 {
		for i := range ws {
			ws[i] /= g
		}
	}
	return ws
}

func gcd(a, b uint64) uint64 {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}
