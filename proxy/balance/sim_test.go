package balance

import (
	"container/heap"
	"math"
	"math/rand/v2"
	"testing"
)

// simResult is what a user of a pool would look at: how busy each backend
// was over time.
type simResult struct {
	mean    []float64 // time-averaged active count per backend
	peakAvg float64   // average over arrivals of max active / mean active
}

// simulate runs a discrete-event simulation: Poisson arrivals, each request
// picked by bal, counted with Inc at the pick and Dec at completion, with
// Pareto (α = 1.5: heavy-tailed, infinite variance) durations. Time is
// measured in mean durations; load is the mean number of requests in
// flight over the whole pool. The first tenth of the run is warm-up.
func simulate(bal Balancer, requests int, load float64, seed uint64) simResult {
	const alpha = 1.5
	xm := (alpha - 1) / alpha // Pareto scale for a mean duration of 1
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	bs := bal.Backends()
	idx := indexOf(bs)
	area := make([]float64, len(bs))
	var done completions
	var now, last, start float64
	var peakSum float64
	var peakN int
	advance := func(t float64) {
		if now >= start {
			for i, b := range bs {
				area[i] += float64(b.Active()) * (t - last)
			}
		}
		last = t
	}
	warm := requests / 10
	for r := 0; r < requests; r++ {
		now += rng.ExpFloat64() / load // arrival rate = load / mean duration
		for done.Len() > 0 && done[0].at <= now {
			c := heap.Pop(&done).(completion)
			advance(c.at)
			c.b.Dec()
		}
		advance(now)
		if r == warm {
			start, last = now, now
			clear(area)
		}
		b := bal.Pick(Key{}, Exclude{})
		b.Inc()
		dur := xm / math.Pow(1-rng.Float64(), 1/alpha)
		heap.Push(&done, completion{at: now + dur, b: b})
		if r > warm {
			var sum, peak int
			for _, b := range bs {
				sum += b.Active()
				peak = max(peak, b.Active())
			}
			peakSum += float64(peak) / (float64(sum) / float64(len(bs)))
			peakN++
		}
	}
	for done.Len() > 0 { // leave the backends idle for the next run
		heap.Pop(&done).(completion).b.Dec()
	}
	mean := make([]float64, len(bs))
	for i := range area {
		mean[i] = area[idx[bs[i]]] / (now - start)
	}
	return simResult{mean: mean, peakAvg: peakSum / float64(peakN)}
}

type completion struct {
	at float64
	b  *Backend
}

type completions []completion

func (c completions) Len() int           { return len(c) }
func (c completions) Less(i, j int) bool { return c[i].at < c[j].at }
func (c completions) Swap(i, j int)      { c[i], c[j] = c[j], c[i] }
func (c *completions) Push(x any)        { *c = append(*c, x.(completion)) }
func (c *completions) Pop() any {
	old := *c
	x := old[len(old)-1]
	*c = old[:len(old)-1]
	return x
}

func maxOverMean(xs []float64) float64 {
	var sum, peak float64
	for _, x := range xs {
		sum += x
		peak = max(peak, x)
	}
	return peak / (sum / float64(len(xs)))
}

// TestLoadBalanceUnderSkew checks that least_conn, two_choices, resource
// and least_time (which without latency samples is least_conn) keep the
// busiest backend under 1.1 × the mean when request lengths are
// heavy-tailed, at 20 requests in flight per backend on average. Two
// measures: at every arrival, max/mean of the active counts (averaged over
// the arrivals), and max/mean of the time-averaged active counts. random
// is the control: the same simulation must show it far worse, or the test
// could not fail.
func TestLoadBalanceUnderSkew(t *testing.T) {
	const backends, perBackend, requests = 10, 20, 200_000
	got := map[string]simResult{}
	for _, alg := range []string{LeastConn, TwoChoices, Resource, LeastTime, Random} {
		bal := mustNew(t, alg, newBackends(t, ones(backends)...))
		got[alg] = simulate(bal, requests, backends*perBackend, 7)
		t.Logf("%-12s instantaneous max/mean %.3f, time-averaged max/mean %.3f",
			alg, got[alg].peakAvg, maxOverMean(got[alg].mean))
	}
	for _, alg := range []string{LeastConn, TwoChoices, Resource, LeastTime} {
		if r := got[alg].peakAvg; r >= 1.1 {
			t.Errorf("%s: instantaneous max/mean load %.3f, want < 1.1", alg, r)
		}
		if r := maxOverMean(got[alg].mean); r >= 1.1 {
			t.Errorf("%s: time-averaged max/mean load %.3f, want < 1.1", alg, r)
		}
	}
	if r := got[Random].peakAvg; r < 1.2 {
		t.Errorf("random: instantaneous max/mean %.3f; the simulation no longer tells balancers apart", r)
	}
}

// TestWeightedLoadUnderSkew runs the same simulation with weights 1, 2, 3,
// 4: each backend's time-averaged load divided by its weight must be within
// 10 % of the mean.
func TestWeightedLoadUnderSkew(t *testing.T) {
	weights := []int{1, 2, 3, 4}
	for _, alg := range []string{LeastConn, TwoChoices} {
		t.Run(alg, func(t *testing.T) {
			bal := mustNew(t, alg, newBackends(t, weights...))
			res := simulate(bal, 200_000, 80, 11)
			perWeight := make([]float64, len(weights))
			for i, w := range weights {
				perWeight[i] = res.mean[i] / float64(w)
			}
			r := maxOverMean(perWeight)
			t.Logf("active/weight per backend %.2f: max/mean %.3f", perWeight, r)
			if r >= 1.1 {
				t.Errorf("max/mean of active/weight %.3f, want < 1.1", r)
			}
		})
	}
}
