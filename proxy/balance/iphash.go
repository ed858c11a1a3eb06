package balance

import "math/rand/v2"

// ipHashTries is how often ip_hash rehashes before walking the pool, as
// nginx's ip_hash (20 tries, then round robin).
const ipHashTries = 20

// ipHash maps the key over the configured weights of all backends, usable
// or not, as nginx's ip_hash and hash: when the chosen backend is down,
// draining, full or excluded the key is rehashed, so a backend going down
// moves only its own keys, and they come back when it recovers. Slow start
// is applied the same way: a backend at p ‰ keeps a fixed p ‰ of its keys
// (chosen by the hash), the others rehash. Adding or removing backends or
// changing a configured weight remaps most keys (hash mod total weight);
// use maglev where that matters. Without a key it picks at random.
type ipHash struct{ pool }

var _ Balancer = (*ipHash)(nil)

func newIPHash(bs []*Backend) *ipHash {
	h := &ipHash{}
	h.init(IPHash, bs, buildIPHash)
	return h
}

func buildIPHash(bs []*Backend) *view {
	v, ws := usable(bs, func(b *Backend) uint64 { return uint64(max(b.weight.Load(), 0)) })
	v.cum = cumulate(ws)
	return v
}

// Pick implements Balancer.
func (h *ipHash) Pick(k Key, ex Exclude) *Backend {
	v := h.current()
	total := v.total()
	x := k.Hash
	if !k.Has {
		x = rand.Uint64()
	}
	key := x
	if total == 0 {
		return h.scan(int(x%uint64(max(len(h.backends), 1))), &ex)
	}
	var i int
	for try := 0; try < ipHashTries; try++ {
		i = v.sample(x % total)
		b := v.members[i]
		if b.room(&ex) && rampAccepts(b, key) {
			return b
		}
		x = fmix64(x + 0x9e3779b97f4a7c15) // next candidate
	}
	return h.scan(int(v.pos[i])+1, &ex)
}

// rampAccepts keeps a fixed share of a slow-starting backend's keys: those
// whose hash falls below its permille. It looks at the key, not at the
// rehashed candidate, so a key the ramp turned away stays away.
func rampAccepts(b *Backend, x uint64) bool {
	p := b.permille.Load()
	return p >= 1000 || fmix64(x^0x5bd1e9955bd1e995)%1000 < uint64(p)
}
