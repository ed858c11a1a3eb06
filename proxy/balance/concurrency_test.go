package balance

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestConcurrentPicksWhileStatesFlip runs, for every algorithm, 8
// goroutines picking (with Inc, ObserveLatency and Dec) while another flips
// the state, ejection, weights, slow start and agent load of three of the
// five backends and calls Update. Run with -race. One backend stays down
// and must never be picked; one stays up with room, so a pick must never
// return nil; every count must be back to zero at the end.
func TestConcurrentPicksWhileStatesFlip(t *testing.T) {
	for _, alg := range Algorithms() {
		t.Run(alg, func(t *testing.T) {
			bs := newBackends(t, 3, 1, 2, 5, 4)
			down, flipping := bs[0], bs[2:] // bs[1] stays up
			must(t, down.SetState(StateDown))
			bal := mustNew(t, alg, bs)

			stop := make(chan struct{})
			var flipper sync.WaitGroup
			var flips atomic.Int64
			flipper.Go(func() {
				for i := 0; ; i++ {
					select {
					case <-stop:
						return
					default:
					}
					b := flipping[i%len(flipping)]
					must(t, b.SetState(State(i/3%4)))
					b.SetEjected(i%5 == 0)
					must(t, b.SetWeight(i%7))
					must(t, b.SetWeightPermille(i*50%1001))
					must(t, b.SetAgentPercent(i*10%101))
					must(t, b.SetMaxConnections(i%3))
					if i%4 == 0 {
						bal.Update()
					}
					flips.Add(1)
				}
			})

			var pickers sync.WaitGroup
			var bad atomic.Value
			for g := 0; g < 8; g++ {
				pickers.Go(func() {
					for i := 0; i < 3000; i++ {
						var ex Exclude
						if i%10 == 0 {
							ex.Add(flipping[0])
						}
						b := bal.Pick(Key{Hash: uint64(g*1_000_003 + i), Has: true}, ex)
						switch b {
						case nil:
							bad.Store("a pick returned nil while a backend was up")
							return
						case down:
							bad.Store("a pick returned the backend that is down")
							return
						}
						b.Inc()
						b.ObserveLatency(time.Duration(i%50) * time.Microsecond)
						b.Dec()
					}
				})
			}
			pickers.Wait()
			close(stop)
			flipper.Wait()
			if msg := bad.Load(); msg != nil {
				t.Fatal(msg)
			}
			if flips.Load() == 0 {
				t.Error("the flipper never ran")
			}
			for _, b := range bs {
				if b.Active() != 0 {
					t.Errorf("%v: %d active at the end, want 0", b, b.Active())
				}
			}
		})
	}
}

// TestTablesFollowChanges checks both ways a table is rebuilt: lazily by
// the next Pick after a setter, and eagerly by Update.
func TestTablesFollowChanges(t *testing.T) {
	for _, alg := range []string{RoundRobin, WeightedRoundRobin, Random, TwoChoices, IPHash, Maglev} {
		t.Run(alg, func(t *testing.T) {
			bs := newBackends(t, 1, 1)
			bal := mustNew(t, alg, bs)
			p := poolOf(bal)
			v0 := p.view.Load()
			must(t, bs[1].SetWeight(3))
			if p.view.Load() != v0 {
				t.Fatal("a setter rebuilt the table itself; it should only mark it stale")
			}
			bal.Pick(Key{}, Exclude{})
			v1 := p.view.Load()
			if v1 == v0 || v1.epoch != p.epoch.Load() {
				t.Fatal("Pick after a weight change did not rebuild the table")
			}
			must(t, bs[1].SetWeight(3)) // no change: no rebuild
			bal.Update()
			if p.view.Load() != v1 {
				t.Error("Update rebuilt an unchanged table")
			}
			must(t, bs[0].SetState(StateDisabled))
			bal.Update()
			if p.view.Load() == v1 {
				t.Error("Update after a state change did not rebuild the table")
			}
		})
	}
}

func poolOf(bal Balancer) *pool {
	switch b := bal.(type) {
	case *roundRobin:
		return &b.pool
	case *weightedRoundRobin:
		return &b.pool
	case *random:
		return &b.pool
	case *twoChoices:
		return &b.pool
	case *ipHash:
		return &b.pool
	case *maglev:
		return &b.pool
	case *leastConn:
		return &b.pool
	case *leastTime:
		return &b.pool
	case *resource:
		return &b.pool
	}
	return nil
}
