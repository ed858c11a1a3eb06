package balance

import (
	"container/heap"
	"math/rand/v2"
	"slices"
	"strings"
)

const (
	// MaglevTableSize is the lookup table size M, a prime well above the
	// backend count, as in the paper's evaluation (65537).
	MaglevTableSize = 65537
	// maglevTries is how many following slots a lookup tries when the
	// slot's backend has no room, before walking the pool.
	maglevTries = 16
)

// maglev is Maglev consistent hashing (Eisenbud et al., "Maglev: A Fast and
// Reliable Software Network Load Balancer", NSDI 2016, section 3.4) with
// weights, built in two stages:
//
//  1. The paper's population over every configured backend (weight > 0,
//     whatever its state), each taking turns in proportion to its
//     configured weight along its own permutation of the slots. This
//     depends on the configuration only and is kept until a configured
//     weight changes.
//  2. Repair for the current state: the slots of backends that are not
//     usable or are in slow start are freed, and the steady backends (up,
//     at full weight) take turns, by weight, claiming freed slots along
//     their permutations. Then each slow-starting backend takes back a
//     fixed, hash-chosen p ‰ of its own slots, so ramping up moves keys
//     only to the ramping backend.
//
// A backend that goes down therefore moves only its own keys (1/N), and
// they come back when it recovers; rebuilding the paper's table without it
// would move about 1.6/N of the keys at N = 100 and 7/N at N = 1000 with
// M = 65537 (TestMaglevConfigChangeDisruption). Adding or removing
// backends in the configuration costs that. The table is a
// function of the configuration and the usable set, not of history, so
// every node with the same view builds the same table. Until a rebuild, a
// lookup whose backend has no room falls through to the next slots.
type maglev struct {
	pool

	// Used by builds only, which pool.mu serialises.
	base    []int32  // stage 1 table, indexes into members
	weights []uint64 // configured weight of every backend when base was built
}

var _ Balancer = (*maglev)(nil)

func newMaglev(bs []*Backend) *maglev {
	m := &maglev{}
	m.init(Maglev, bs, m.build)
	return m
}

// Pick implements Balancer.
func (m *maglev) Pick(k Key, ex Exclude) *Backend {
	return m.pickFrom(m.current(), k, ex)
}

func (m *maglev) pickFrom(v *view, k Key, ex Exclude) *Backend {
	x := k.Hash
	if !k.Has {
		x = rand.Uint64()
	}
	if len(v.table) == 0 {
		return m.scan(int(x%uint64(max(len(m.backends), 1))), &ex)
	}
	slot := int(x % MaglevTableSize)
	var i int32
	for try := 0; try < maglevTries; try++ {
		i = v.table[slot]
		if b := v.members[i]; b.room(&ex) {
			return b
		}
		if slot++; slot == MaglevTableSize {
			slot = 0
		}
	}
	return m.scan(int(v.pos[i])+1, &ex)
}

func configuredWeight(b *Backend) uint64 { return uint64(max(b.weight.Load(), 0)) }

func (m *maglev) build(bs []*Backend) *view {
	// Stage 1, kept while the configured weights stay the same.
	all := make([]uint64, len(bs))
	for i, b := range bs {
		all[i] = configuredWeight(b)
	}
	v, ws := usable(bs, configuredWeight)
	n := len(v.members)
	if n == 0 {
		return v
	}
	if !slices.Equal(all, m.weights) {
		m.base = populate(v.members, ws, nil)
		m.weights = all
	}

	// Stage 2. Steady backends are usable at full slow-start weight; if
	// none is, every usable backend counts as steady. Each backend's state
	// is read once, so the decisions below agree with each other.
	eff := make([]uint64, n)
	steady := make([]uint64, n)
	var nSteady, nUsable int
	for i, b := range v.members {
		eff[i] = effWeight(b)
		if eff[i] > 0 {
			nUsable++
			if b.permille.Load() >= 1000 {
				steady[i] = eff[i]
				nSteady++
			}
		}
	}
	if nUsable == 0 {
		return v
	}
	if nSteady == 0 {
		copy(steady, eff)
	}
	// The slots of backends that are not steady go to steady ones; then
	// ramping backends take back a fixed share of their own. Ramping up
	// thus moves keys only between the ramping backend and the others.
	table := slices.Clone(m.base)
	for s, i := range table {
		if steady[i] == 0 {
			table[s] = -1
		}
	}
	table = populate(v.members, steady, table)
	for s, i := range m.base {
		if eff[i] > 0 && steady[i] == 0 && rampKeepsSlot(v.members[i], s) {
			table[s] = i
		}
	}
	v.table = table
	return v
}

// rampKeepsSlot reports whether a slow-starting backend keeps slot s: a
// fixed share of its slots, growing with its permille.
func rampKeepsSlot(b *Backend, s int) bool {
	p := b.permille.Load()
	return p >= 1000 || fmix64(uint64(s)^0x5bd1e9955bd1e995)%1000 < uint64(p)
}

// populate runs the paper's Pseudocode 1 with weights: backends with
// weight w take turns at rounds (k+½)·maxW/w, k = 0, 1, ... (the heaviest
// every round, one a third as heavy every third round, as Envoy's weighted
// Maglev), in address order within a round, and each turn claims the next
// free slot of the backend's permutation offset + j·skip (mod M), offset
// and skip hashed from its address. Backends of weight 0 take no turns.
// table holds the slots already taken (-1 free) or is nil for an empty one.
func populate(members []*Backend, ws []uint64, table []int32) []int32 {
	free := 0
	if table == nil {
		table = make([]int32, MaglevTableSize)
		for s := range table {
			table[s] = -1
		}
	}
	for _, i := range table {
		if i < 0 {
			free++
		}
	}
	var order []int
	var maxW uint64
	for i, w := range ws {
		if w > 0 {
			order = append(order, i)
			maxW = max(maxW, w)
		}
	}
	if free == 0 || len(order) == 0 {
		return table
	}
	slices.SortStableFunc(order, func(a, b int) int {
		return strings.Compare(members[a].address, members[b].address)
	})
	turns := make(turnHeap, len(order))
	perm := make([]struct{ next, skip uint64 }, len(members))
	for rank, i := range order {
		h1 := HashString(members[i].address).Hash
		perm[i].next = h1 % MaglevTableSize
		perm[i].skip = fmix64(h1^0x2545f4914f6cdd1d)%(MaglevTableSize-1) + 1
		t := maxW / 2
		turns[rank] = turn{round: ceilDiv(t, ws[i]), rank: rank, member: i, target: t}
	}
	heap.Init(&turns)
	for ; free > 0; free-- {
		t := &turns[0]
		p := &perm[t.member]
		for table[p.next] >= 0 {
			p.next = (p.next + p.skip) % MaglevTableSize
		}
		table[p.next] = int32(t.member)
		p.next = (p.next + p.skip) % MaglevTableSize
		t.target += maxW
		t.round = ceilDiv(t.target, ws[t.member])
		heap.Fix(&turns, 0)
	}
	return table
}

func ceilDiv(a, b uint64) uint64 { return (a + b - 1) / b }

type turn struct {
	round  uint64 // the round of the next turn
	rank   int    // address order, breaks ties within a round
	member int    // index into members
	target uint64 // (k+½)·maxW for the next turn k
}

type turnHeap []turn

func (h turnHeap) Len() int { return len(h) }
func (h turnHeap) Less(i, j int) bool {
	return h[i].round < h[j].round || (h[i].round == h[j].round && h[i].rank < h[j].rank)
}
func (h turnHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *turnHeap) Push(x any)   { *h = append(*h, x.(turn)) }
func (h *turnHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}
