package balance

import (
	"fmt"
	"math"
	"testing"
)

// TestDistribution makes 1e6 picks per algorithm and compares each
// backend's share of them with its share of the weights. Deterministic
// algorithms (round robin, smooth WRR) must be within 1 % of the expected
// share (relative). Random draws and hashes of distinct keys must be within
// 1 percentage point (absolute): with 1e6 picks the standard deviation of
// a share is at most 0.05 pp, so 1 pp is 20 σ and never flakes, while a
// wrong weighting (e.g. ignoring weights, 0.25 vs 0.10) is caught.
func TestDistribution(t *testing.T) {
	const picks = 1_000_000
	weighted := []int{1, 2, 3, 4, 10}
	for _, tc := range []struct {
		alg      string
		weights  []int
		want     []float64
		keyed    bool
		relative bool
	}{
		{RoundRobin, weighted, weightShares([]int{1, 1, 1, 1, 1}), false, true},
		{WeightedRoundRobin, weighted, weightShares(weighted), false, true},
		{WeightedRoundRobin, []int{5, 1, 1}, weightShares([]int{5, 1, 1}), false, true},
		{Random, weighted, weightShares(weighted), false, false},
		{TwoChoices, weighted, weightShares(weighted), false, false}, // zero load: follows weights
		{IPHash, weighted, weightShares(weighted), true, false},
		{Maglev, weighted, weightShares(weighted), true, false},
		{Maglev, ones(100), weightShares(ones(100)), true, false},
		{IPHash, ones(100), weightShares(ones(100)), true, false},
	} {
		t.Run(fmt.Sprintf("%s/%d", tc.alg, len(tc.weights)), func(t *testing.T) {
			bal := mustNew(t, tc.alg, newBackends(t, tc.weights...))
			got := shares(count(t, bal, picks, tc.keyed))
			for i := range got {
				d := math.Abs(got[i] - tc.want[i])
				if tc.relative && d > 0.01*tc.want[i] {
					t.Errorf("backend %d (weight %d): share %.5f, want %.5f ±1%%", i, tc.weights[i], got[i], tc.want[i])
				}
				if !tc.relative && d > 0.01 {
					t.Errorf("backend %d (weight %d): share %.5f, want %.5f ±0.01", i, tc.weights[i], got[i], tc.want[i])
				}
			}
		})
	}
}

func ones(n int) []int {
	w := make([]int, n)
	for i := range w {
		w[i] = 1
	}
	return w
}

// TestHeldConnectionsFollowWeights picks without ever finishing a request:
// least_conn and resource must then spread the active counts in proportion
// to the weights (resource: weight × agent percent), exactly up to one
// connection.
func TestHeldConnectionsFollowWeights(t *testing.T) {
	for _, tc := range []struct {
		alg     string
		weights []int
		agent   []int
		want    []float64
	}{
		{LeastConn, []int{1, 2, 3, 4}, nil, weightShares([]int{1, 2, 3, 4})},
		{LeastTime, []int{1, 2, 3, 4}, nil, weightShares([]int{1, 2, 3, 4})},
		{Resource, []int{1, 1, 1, 1}, []int{100, 75, 50, 25}, weightShares([]int{100, 75, 50, 25})},
		{Resource, []int{2, 1, 1, 1}, []int{50, 100, 0, 100}, weightShares([]int{100, 100, 0, 100})},
	} {
		t.Run(fmt.Sprint(tc.alg, tc.weights, tc.agent), func(t *testing.T) {
			bs := newBackends(t, tc.weights...)
			for i, p := range tc.agent {
				must(t, bs[i].SetAgentPercent(p))
			}
			bal := mustNew(t, tc.alg, bs)
			const picks = 10_000
			for i := 0; i < picks; i++ {
				bal.Pick(Key{}, Exclude{}).Inc()
			}
			for i, b := range bs {
				want := tc.want[i] * picks
				if math.Abs(float64(b.Active())-want) > 1 {
					t.Errorf("backend %d: %d active, want %.1f ±1", i, b.Active(), want)
				}
			}
		})
	}
}
