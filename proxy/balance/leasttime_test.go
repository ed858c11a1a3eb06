package balance

import (
	"testing"
	"testing/synctest"
	"time"
)

// TestLeastTimeProbesSlowBackend runs ten minutes of fake time (synctest):
// a request every 10 ms, answered in 1 ms by one backend and 50 ms by the
// other. least_time must send nearly everything to the fast one, yet the
// slow one must get traffic in every minute: its EWMA decays while it is
// idle, so it is tried again rather than starved forever.
func TestLeastTimeProbesSlowBackend(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		bs := newBackends(t, 1, 1)
		fast, slow := bs[0], bs[1]
		bal := mustNew(t, LeastTime, bs)
		latency := map[*Backend]time.Duration{fast: time.Millisecond, slow: 50 * time.Millisecond}
		const minutes = 10
		var slowPerMinute [minutes]int
		total := 0
		start := time.Now()
		for time.Since(start) < minutes*time.Minute {
			b := bal.Pick(Key{}, Exclude{})
			b.Inc()
			b.ObserveLatency(latency[b])
			b.Dec()
			if b == slow {
				slowPerMinute[int(time.Since(start)/time.Minute)]++
			}
			total++
			time.Sleep(10 * time.Millisecond) // fake time: the next request
		}
		slowTotal := 0
		for m, n := range slowPerMinute {
			slowTotal += n
			if n == 0 {
				t.Errorf("minute %d: the slow backend got no request (starved)", m)
			}
		}
		t.Logf("slow backend: %d of %d requests, per minute %v", slowTotal, total, slowPerMinute)
		if share := float64(slowTotal) / float64(total); share > 0.01 {
			t.Errorf("slow backend got %.2f%% of requests, want under 1%%", 100*share)
		}
	})
}

// TestLeastTimeWeighsActive checks that latency is weighed with the active
// count: a backend twice as fast takes about twice the requests in flight.
func TestLeastTimeWeighsActive(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		bs := newBackends(t, 1, 1)
		bal := mustNew(t, LeastTime, bs)
		bs[0].ObserveLatency(10 * time.Millisecond)
		bs[1].ObserveLatency(20 * time.Millisecond)
		for i := 0; i < 300; i++ {
			bal.Pick(Key{}, Exclude{}).Inc()
		}
		if a, b := bs[0].Active(), bs[1].Active(); a < 195 || a > 205 || b < 95 || b > 105 {
			t.Errorf("active counts %d and %d, want about 200 and 100", a, b)
		}
	})
}

func TestLatencyDecay(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newBackends(t, 1)[0]
		if b.Latency() != 0 {
			t.Errorf("Latency() before any sample = %v, want 0", b.Latency())
		}
		b.ObserveLatency(80 * time.Millisecond)
		if got := b.Latency(); got != 80*time.Millisecond {
			t.Errorf("after the first sample: %v, want 80ms", got)
		}
		b.ObserveLatency(0) // EWMA with weight 1/4: 60ms
		if got := b.Latency(); got != 60*time.Millisecond {
			t.Errorf("after a 0 sample: %v, want 60ms", got)
		}
		time.Sleep(2 * latencyHalfLife)
		if got := b.Latency(); got != 15*time.Millisecond {
			t.Errorf("two half-lives later: %v, want 15ms", got)
		}
		time.Sleep(latencyHalfLife / 2)
		if got := b.Latency(); got < 11*time.Millisecond || got > 11300*time.Microsecond {
			t.Errorf("2.5 half-lives later: %v, want about 11.25ms", got)
		}
	})
}
