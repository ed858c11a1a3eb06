package balance

import (
	"fmt"
	"math"
	"testing"
)

// TestIPHashDownMovesOnlyItsKeys checks nginx-style rehashing: when a
// backend goes down only the clients it served move, and they come back
// when it recovers; while it ramps at 300 ‰ it keeps about 30 % of them.
func TestIPHashDownMovesOnlyItsKeys(t *testing.T) {
	bs := newBackends(t, 1, 2, 3, 4)
	bal := mustNew(t, IPHash, bs)
	const clients = 50_000
	pick := func() []*Backend {
		got := make([]*Backend, clients)
		for i := range got {
			got[i] = bal.Pick(HashString(fmt.Sprint("198.18.7.", i)), Exclude{})
		}
		return got
	}
	before := pick()
	must(t, bs[2].SetState(StateDown))
	during := pick()
	var owned, kept int
	for i := range before {
		if before[i] != bs[2] && during[i] != before[i] {
			t.Fatalf("client %d moved from %v, which is up, to %v", i, before[i], during[i])
		}
		if during[i] == bs[2] {
			t.Fatalf("client %d sent to the backend that is down", i)
		}
	}
	must(t, bs[2].SetState(StateUp))
	must(t, bs[2].SetWeightPermille(300))
	ramp := pick()
	for i := range before {
		if before[i] == bs[2] {
			owned++
			if ramp[i] == bs[2] {
				kept++
			}
		} else if ramp[i] == bs[2] {
			t.Fatalf("client %d moved to the ramping backend from %v", i, before[i])
		}
	}
	if frac := float64(kept) / float64(owned); math.Abs(frac-0.3) > 0.02 {
		t.Errorf("ramping backend kept %.3f of its clients, want 0.30 ±0.02", frac)
	}
	must(t, bs[2].SetWeightPermille(1000))
	if moved(before, pick()) != 0 {
		t.Error("after recovery some clients are not back where they were")
	}
}
