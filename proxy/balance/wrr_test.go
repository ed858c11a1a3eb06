package balance

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestSmoothWRRNginxSequence checks the sequence nginx documents for
// weights a=5, b=1, c=1 (commit 52327e0627f4, "Upstream: smooth weighted
// round-robin balancing").
func TestSmoothWRRNginxSequence(t *testing.T) {
	bs := newBackends(t, 5, 1, 1)
	bal := mustNew(t, WeightedRoundRobin, bs)
	name := map[*Backend]string{bs[0]: "a", bs[1]: "b", bs[2]: "c"}
	var got []string
	for i := 0; i < 14; i++ {
		got = append(got, name[bal.Pick(Key{}, Exclude{})])
	}
	want := "a a b a c a a a a b a c a a"
	if diff := cmp.Diff(want, strings.Join(got, " ")); diff != "" {
		t.Errorf("sequence (-want +got):\n%s", diff)
	}
}

// nginxPeers is nginx's ngx_http_upstream_get_peer loop, run as nginx runs
// it: the reference smoothSequence must match.
func nginxPeers(ws []uint64, n int) []int32 {
	cur := make([]int64, len(ws))
	var total int64
	for _, w := range ws {
		total += int64(w)
	}
	out := make([]int32, n)
	for s := range out {
		best := -1
		for i, w := range ws {
			cur[i] += int64(w)
			if best == -1 || cur[i] > cur[best] {
				best = i
			}
		}
		cur[best] -= total
		out[s] = int32(best)
	}
	return out
}

func TestSmoothSequenceMatchesNginx(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	cases := [][]uint64{{5, 1, 1}, {1}, {3, 3}, {4, 2, 1}, {1, 2, 3, 4, 5, 6}, {256, 1, 256, 7}}
	for range 200 {
		ws := make([]uint64, 1+rng.IntN(12))
		for i := range ws {
			ws[i] = 1 + rng.Uint64N(uint64(1+rng.IntN(40)))
		}
		cases = append(cases, ws)
	}
	for _, ws := range cases {
		got := smoothSequence(ws)
		want := nginxPeers(divideGCD(append([]uint64(nil), ws...)), len(got))
		if diff := cmp.Diff(want, got); diff != "" {
			t.Fatalf("weights %v (-nginx +got):\n%s", ws, diff)
		}
	}
}

// TestSmoothSequenceQuantises checks a pool whose period would be too long:
// the period is capped and each share stays within one slot of the period
// (a slot is 1/8388 of the traffic here: 1000 distinct weights).
func TestSmoothSequenceQuantises(t *testing.T) {
	ws := make([]uint64, 1000)
	for i := range ws {
		ws[i] = uint64(1 + i%256*1000 + i) // distinct, large, coprime-ish
	}
	seq := smoothSequence(ws)
	if len(seq) > maxPeriod || len(seq) < 8000 {
		t.Fatalf("period %d, want 8000..%d", len(seq), maxPeriod)
	}
	slot := 1 / float64(len(seq))
	counts := make([]int, len(ws))
	for _, i := range seq {
		counts[i]++
	}
	var sum uint64
	for _, w := range ws {
		sum += w
	}
	for i, w := range ws {
		want := float64(w) / float64(sum)
		got := float64(counts[i]) / float64(len(seq))
		if math.Abs(got-want) > slot || counts[i] == 0 {
			t.Errorf("backend %d: share %.6f, want %.6f", i, got, want)
		}
	}
}

// TestSlowStartThinsRoundRobin checks that round_robin, which ignores
// configured weights, still gives a ramping backend a share in proportion
// to its slow-start factor.
func TestSlowStartThinsRoundRobin(t *testing.T) {
	bs := newBackends(t, 1, 9, 1)
	bal := mustNew(t, RoundRobin, bs)
	must(t, bs[0].SetWeightPermille(100))
	got := shares(count(t, bal, 2100, false))
	want := []float64{0.1 / 2.1, 1 / 2.1, 1 / 2.1}
	if diff := cmp.Diff(want, got, approx(1e-9)); diff != "" {
		t.Errorf("shares (-want +got):\n%s", diff)
	}
}
