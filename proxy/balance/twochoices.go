package balance

import "math/rand/v2"

// twoChoices is the power of two random choices (Mitzenmacher, "The Power
// of Two Choices in Randomized Load Balancing", 2001): draw two backends at
// random in proportion to their effective weights and take the one with
// fewer active/weight; on a tie the first draw wins, so with equal loads the
// traffic follows the weights. It needs no scan, so it costs the same for
// 3 and 1000 backends.
type twoChoices struct{ pool }

var _ Balancer = (*twoChoices)(nil)

func newTwoChoices(bs []*Backend) *twoChoices {
	t := &twoChoices{}
	t.init(TwoChoices, bs, buildCumulative)
	return t
}

// Pick implements Balancer.
func (t *twoChoices) Pick(_ Key, ex Exclude) *Backend {
	v := t.current()
	total := v.total()
	if total == 0 {
		return t.scanRandom(&ex)
	}
	var first *Backend
	var i int
	for draw := 0; draw < 4; draw++ {
		i = v.sample(rand.Uint64N(total))
		b := v.members[i]
		if !b.room(&ex) {
			continue
		}
		if first == nil {
			first = b
			continue
		}
		if b == first {
			continue
		}
		return lighter(first, b)
	}
	if first != nil {
		return first
	}
	return t.scan(int(v.pos[i])+1, &ex)
}

// lighter returns the backend with fewer active/weight, a on a tie.
func lighter(a, b *Backend) *Backend {
	wa, wb := uint64(max(a.eff.Load(), 1)), uint64(max(b.eff.Load(), 1))
	la, lb := uint64(max(a.active.Load(), 0)), uint64(max(b.active.Load(), 0))
	if less(lb, wb, la, wa) {
		return b
	}
	return a
}
