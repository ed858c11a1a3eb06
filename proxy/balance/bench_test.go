package balance

import (
	"fmt"
	"testing"
	"time"
)

// benchPool returns n backends with weights 1..4, some requests in flight
// and a latency sample each, and 1024 precomputed keys.
func benchPool(b testing.TB, n int) ([]*Backend, []Key) {
	weights := make([]int, n)
	for i := range weights {
		weights[i] = 1 + i%4
	}
	bs := newBackends(b, weights...)
	for i, be := range bs {
		for range i % 7 {
			be.Inc()
		}
		be.ObserveLatency(time.Duration(1+i%5) * time.Millisecond)
	}
	keys := make([]Key, 1024)
	for i := range keys {
		keys[i] = HashString(fmt.Sprint("198.18.1.", i))
	}
	return bs, keys
}

func BenchmarkPick(b *testing.B) {
	for _, alg := range Algorithms() {
		for _, n := range []int{3, 100, 1000} {
			b.Run(fmt.Sprintf("%s/%d", alg, n), func(b *testing.B) {
				bs, keys := benchPool(b, n)
				bal := mustNew(b, alg, bs)
				b.ReportAllocs()
				i := 0
				for b.Loop() {
					if bal.Pick(keys[i&1023], Exclude{}) == nil {
						b.Fatal("nil pick")
					}
					i++
				}
			})
		}
	}
}

// BenchmarkPickParallel picks from all CPUs at once: the shared counter of
// round robin, the scans of least_conn and the table reads of maglev and
// two_choices under contention, with Inc and Dec as the proxy does.
func BenchmarkPickParallel(b *testing.B) {
	for _, alg := range []string{RoundRobin, WeightedRoundRobin, LeastConn, TwoChoices, Maglev} {
		b.Run(fmt.Sprintf("%s/100", alg), func(b *testing.B) {
			bs, keys := benchPool(b, 100)
			bal := mustNew(b, alg, bs)
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				i := 0
				for pb.Next() {
					be := bal.Pick(keys[i&1023], Exclude{})
					be.Inc()
					be.Dec()
					i++
				}
			})
		})
	}
}

// BenchmarkRebuild measures one table rebuild after a state change: the
// cost Update (or the first Pick after the change) pays.
func BenchmarkRebuild(b *testing.B) {
	for _, alg := range []string{WeightedRoundRobin, Random, Maglev} {
		for _, n := range []int{100, 1000} {
			b.Run(fmt.Sprintf("%s/%d", alg, n), func(b *testing.B) {
				bs, _ := benchPool(b, n)
				bal := mustNew(b, alg, bs)
				b.ReportAllocs()
				i := 0
				for b.Loop() {
					must(b, bs[0].SetState(State(i%2*3))) // up, down, up, ...
					bal.Update()
					i++
				}
			})
		}
	}
}

// TestPickDoesNotAllocate asserts what the benchmarks report: no algorithm
// allocates on Pick, with or without exclusions, keys and fall-through.
func TestPickDoesNotAllocate(t *testing.T) {
	for _, alg := range Algorithms() {
		t.Run(alg, func(t *testing.T) {
			bs, keys := benchPool(t, 100)
			bal := mustNew(t, alg, bs)
			// Full backends are in the tables but have no room: the
			// fall-through paths run.
			for _, b := range bs[3:40] {
				must(t, b.SetMaxConnections(1))
				b.Inc()
			}
			var ex Exclude
			ex.Add(bs[1])
			ex.Add(bs[2])
			i := 0
			allocs := testing.AllocsPerRun(1000, func() {
				bal.Pick(keys[i&1023], ex)
				bal.Pick(Key{}, Exclude{})
				i++
			})
			if allocs != 0 {
				t.Errorf("%v allocations per Pick, want 0", allocs/2)
			}
		})
	}
}
