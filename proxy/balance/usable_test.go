package balance

import (
	"fmt"
	"testing"
)

// TestNeverPicksUnusable makes one backend of three unusable in each way a
// backend can be, for every algorithm, and checks that 3000 picks never
// return it (and never return nil while others are usable).
func TestNeverPicksUnusable(t *testing.T) {
	conditions := []struct {
		name string
		make func(t *testing.T, b *Backend, ex *Exclude)
	}{
		{"down", func(t *testing.T, b *Backend, _ *Exclude) { must(t, b.SetState(StateDown)) }},
		{"draining", func(t *testing.T, b *Backend, _ *Exclude) { must(t, b.SetState(StateDraining)) }},
		{"disabled", func(t *testing.T, b *Backend, _ *Exclude) { must(t, b.SetState(StateDisabled)) }},
		{"ejected", func(t *testing.T, b *Backend, _ *Exclude) { b.SetEjected(true) }},
		{"weight 0", func(t *testing.T, b *Backend, _ *Exclude) { must(t, b.SetWeight(0)) }},
		{"slow start 0", func(t *testing.T, b *Backend, _ *Exclude) { must(t, b.SetWeightPermille(0)) }},
		{"full", func(t *testing.T, b *Backend, _ *Exclude) {
			must(t, b.SetMaxConnections(2))
			b.Inc()
			b.Inc()
		}},
		{"excluded", func(t *testing.T, b *Backend, ex *Exclude) { ex.Add(b) }},
	}
	for _, alg := range Algorithms() {
		for _, c := range conditions {
			for _, update := range []bool{false, true} {
				t.Run(fmt.Sprintf("%s/%s/update=%v", alg, c.name, update), func(t *testing.T) {
					bs := newBackends(t, 5, 5, 1)
					bal := mustNew(t, alg, bs)
					var ex Exclude
					// Make the heaviest backend unusable after the tables
					// were built: without Update the stale table still
					// lists it.
					c.make(t, bs[0], &ex)
					if update {
						bal.Update()
					}
					for i := 0; i < 3000; i++ {
						b := bal.Pick(HashString(fmt.Sprint(i)), ex)
						if b == nil {
							t.Fatalf("pick %d = nil with two usable backends", i)
						}
						if b == bs[0] {
							t.Fatalf("pick %d returned the %s backend", i, c.name)
						}
					}
				})
			}
		}
	}
}

func TestResourceSkipsAgentZero(t *testing.T) {
	bs := newBackends(t, 5, 1)
	bal := mustNew(t, Resource, bs)
	must(t, bs[0].SetAgentPercent(0))
	for i := 0; i < 1000; i++ {
		if b := bal.Pick(Key{}, Exclude{}); b != bs[1] {
			t.Fatalf("pick %d = %v, want %v (the other reports 0%%)", i, b, bs[1])
		}
	}
}

// TestNilWhenNothingUsable checks every algorithm returns nil, not a
// backend without room, when none is left: the proxy answers 503.
func TestNilWhenNothingUsable(t *testing.T) {
	for _, alg := range Algorithms() {
		t.Run(alg, func(t *testing.T) {
			bs := newBackends(t, 1, 2, 3, 4)
			bal := mustNew(t, alg, bs)
			must(t, bs[0].SetState(StateDown))
			must(t, bs[1].SetState(StateDraining))
			must(t, bs[2].SetMaxConnections(1))
			bs[2].Inc()
			var ex Exclude
			ex.Add(bs[3])
			for i := 0; i < 100; i++ {
				if b := bal.Pick(HashString(fmt.Sprint(i)), ex); b != nil {
					t.Fatalf("pick %d = %v, want nil", i, b)
				}
			}
			// The last one back: it takes every pick, at once.
			bs[2].Dec()
			for i := 0; i < 100; i++ {
				if b := bal.Pick(HashString(fmt.Sprint(i)), ex); b != bs[2] {
					t.Fatalf("pick %d = %v, want %v", i, b, bs[2])
				}
			}
		})
	}
}

// TestDrainingKeepsConnections checks that draining stops new picks but
// leaves the active count for the proxy to run down.
func TestDrainingKeepsConnections(t *testing.T) {
	bs := newBackends(t, 1, 1)
	bal := mustNew(t, LeastConn, bs)
	bs[0].Inc()
	bs[0].Inc()
	must(t, bs[0].SetState(StateDraining))
	for i := 0; i < 100; i++ {
		if b := bal.Pick(Key{}, Exclude{}); b != bs[1] {
			t.Fatalf("pick %d = %v, want %v", i, b, bs[1])
		}
	}
	if bs[0].Active() != 2 {
		t.Errorf("draining backend Active() = %d, want 2", bs[0].Active())
	}
}
