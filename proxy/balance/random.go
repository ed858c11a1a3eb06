package balance

import "math/rand/v2"

// random picks a backend at random in proportion to its effective weight.
// It uses math/rand/v2's per-thread generator: no lock, no allocation.
type random struct{ pool }

var _ Balancer = (*random)(nil)

func newRandom(bs []*Backend) *random {
	r := &random{}
	r.init(Random, bs, buildCumulative)
	return r
}

// Pick implements Balancer.
func (r *random) Pick(_ Key, ex Exclude) *Backend {
	v := r.current()
	total := v.total()
	if total == 0 {
		return r.scanRandom(&ex)
	}
	i := v.sample(rand.Uint64N(total))
	if b := v.members[i]; b.room(&ex) {
		return b
	}
	// Draw again once (the table may predate a change), then walk on.
	i = v.sample(rand.Uint64N(total))
	if b := v.members[i]; b.room(&ex) {
		return b
	}
	return r.scan(int(v.pos[i])+1, &ex)
}
