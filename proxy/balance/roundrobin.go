package balance

import "sync/atomic"

// roundRobin takes the usable backends in turn, ignoring configured
// weights. It is the smooth WRR sequence with every weight set to the
// backend's slow-start permille: at full weight that is plain rotation, and
// a ramping backend gets its share of turns.
type roundRobin struct {
	pool
	_    [64]byte
	next atomic.Uint64
	_    [56]byte
}

var _ Balancer = (*roundRobin)(nil)

func newRoundRobin(bs []*Backend) *roundRobin {
	r := &roundRobin{}
	r.init(RoundRobin, bs, func(bs []*Backend) *view { return buildSmooth(bs, rampWeight) })
	return r
}

// rampWeight is the round-robin weight: the slow-start permille of a usable
// backend.
func rampWeight(b *Backend) uint64 {
	if b.eff.Load() <= 0 {
		return 0
	}
	return uint64(b.permille.Load())
}

// Pick implements Balancer.
func (r *roundRobin) Pick(_ Key, ex Exclude) *Backend {
	return r.pickSeq(r.current(), r.next.Add(1)-1, &ex)
}
