package health

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"

	"lbd/proxy/balance"
)

// step is one probe result and what a user sees afterwards.
type step struct {
	Probe   Result
	State   State
	Balance balance.State
	Healthy int // Pool.Healthy
}

func TestStateMachine(t *testing.T) {
	up, down := balance.StateUp, balance.StateDown
	for _, tc := range []struct {
		name       string
		fall, rise int
		steps      []step
	}{
		{"seed article (fall 3, rise 2)", 3, 2, []step{
			{pass, Healthy, up, 1},
			{fail, Degraded, up, 1}, // one failed probe: degraded, still in rotation
			{pass, Healthy, up, 1},  // the next passes: healthy again
			{fail, Degraded, up, 1},
			{fail, Degraded, up, 1},
			{fail, Unhealthy, down, 0}, // third in a row: out of rotation
			{fail, Unhealthy, down, 0}, // still probed
			{pass, Unhealthy, down, 0}, // one of rise 2
			{fail, Unhealthy, down, 0}, // the run starts over
			{pass, Unhealthy, down, 0},
			{pass, Healthy, up, 1},
		}},
		{"fall 1 skips degraded", 1, 1, []step{
			{pass, Healthy, up, 1},
			{fail, Unhealthy, down, 0},
			{pass, Healthy, up, 1},
		}},
		{"first probe decides", 3, 2, []step{
			{fail, Unhealthy, down, 0},
			{pass, Unhealthy, down, 0},
			{pass, Healthy, up, 1},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				cfg := testConfig()
				cfg.Health.Fall, cfg.Health.Rise = tc.fall, tc.rise
				f := newFakeProber()
				p, bs, logs := newTestPool(t, cfg, 1, WithProber(f))
				var want, got []step
				transitions := 0
				prev := Healthy
				for _, s := range tc.steps {
					f.answer(bs[0].Address(), s.Probe)
					want = append(want, s)
					st := p.Snapshot()[0]
					got = append(got, step{s.Probe, st.State, bs[0].State(), p.Healthy()})
					if st.State != prev {
						transitions++
						prev = st.State
					}
				}
				if diff := cmp.Diff(want, got); diff != "" {
					t.Errorf("states after each probe (-want +got):\n%s", diff)
				}
				if n := logs.count("backend health changed"); n != transitions {
					t.Errorf("%d log lines about health changes, want one per transition (%d)", n, transitions)
				}
				if n := p.Snapshot()[0].Transitions; n != transitions {
					t.Errorf("%d transitions counted (the metric), want %d", n, transitions)
				}
			})
		})
	}
}

func TestSnapshotShowsLastCheck(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFakeProber()
		p, bs, _ := newTestPool(t, testConfig(), 2, WithProber(f))
		f.setAuto(bs[1].Address(), pass)
		start := time.Now()
		f.answer(bs[0].Address(), pass)
		f.answer(bs[0].Address(), fail)
		got := p.Snapshot()[0]
		if got.LastCheck.Before(start) || got.LastCheck.After(time.Now()) {
			t.Errorf("LastCheck = %v, want between %v and %v", got.LastCheck, start, time.Now())
		}
		got.LastCheck = time.Time{}
		want := BackendHealth{
			Address: bs[0].Address(), State: Degraded, ConsecutiveFail: 1, Transitions: 1, LastResult: "HTTP 503",
			WeightPermille: 1000, EffectiveWeight: 1000,
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("Snapshot()[0] (-want +got):\n%s", diff)
		}
	})
}

func TestDownBackendStartsUnhealthy(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		bs := newBackends(t, 2)
		if err := bs[0].SetState(balance.StateDown); err != nil {
			t.Fatal(err)
		}
		f := newFakeProber()
		p, err := NewPool(testConfig(), bs, nil, WithProber(f))
		if err != nil {
			t.Fatal(err)
		}
		defer p.Close()
		if got := p.Snapshot()[0].State; got != Unhealthy {
			t.Errorf("backend that was Down starts %v, want unhealthy", got)
		}
		if got := p.Healthy(); got != 1 {
			t.Errorf("Healthy() = %d, want 1", got)
		}
	})
}

func TestOperatorStatesAreLeftAlone(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := testConfig()
		cfg.Health.Fall = 1
		f := newFakeProber()
		p, bs, _ := newTestPool(t, cfg, 1, WithProber(f))
		addr := bs[0].Address()
		f.answer(addr, pass)
		if err := bs[0].SetState(balance.StateDisabled); err != nil {
			t.Fatal(err)
		}
		f.answer(addr, fail)
		f.answer(addr, pass)
		if got := bs[0].State(); got != balance.StateDisabled {
			t.Errorf("after lbctl disable and health changes, state = %v, want disabled", got)
		}
		// lbctl enable while health says unhealthy: the next probe corrects it.
		f.answer(addr, fail)
		if err := bs[0].SetState(balance.StateUp); err != nil {
			t.Fatal(err)
		}
		f.answer(addr, fail)
		if got := bs[0].State(); got != balance.StateDown {
			t.Errorf("unhealthy backend enabled by hand: state after next probe = %v, want down", got)
		}
		_ = p
	})
}

func TestSlowStartAfterRecovery(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := testConfig()
		cfg.SlowStart = dur(10 * time.Second)
		f := newFakeProber()
		_, bs, _ := newTestPool(t, cfg, 1, WithProber(f))
		addr := bs[0].Address()
		f.answer(addr, pass)
		for range 3 {
			f.answer(addr, fail)
		}
		if bs[0].State() != balance.StateDown {
			t.Fatalf("state = %v after 3 failures, want down", bs[0].State())
		}
		f.answer(addr, pass)
		f.answer(addr, pass)  // second of rise 2: back in rotation
		t0 := time.Now()      // fake time stands still until the test blocks
		f.setAuto(addr, pass) // keep passing while the weight ramps
		if bs[0].State() != balance.StateUp {
			t.Fatalf("state = %v after rise passes, want up", bs[0].State())
		}
		var got []int
		for k := range 12 {
			time.Sleep(time.Until(t0.Add(time.Duration(k) * time.Second)))
			synctest.Wait()
			got = append(got, bs[0].WeightPermille())
		}
		// 10 % at once, then balance.SlowStartPermille's 50 ‰ steps, full
		// weight at slow_start and after.
		want := []int{100, 150, 250, 350, 450, 550, 600, 700, 800, 900, 1000, 1000}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("weight permille each second after recovery (-want +got):\n%s", diff)
		}
	})
}

func TestNoSlowStartAtStartOrWhenOff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFakeProber()
		cfg := testConfig() // slow_start 0
		cfg.Health.Fall, cfg.Health.Rise = 1, 1
		_, bs, _ := newTestPool(t, cfg, 1, WithProber(f))
		addr := bs[0].Address()
		var got []int
		f.answer(addr, pass)
		got = append(got, bs[0].WeightPermille())
		f.answer(addr, fail)
		f.answer(addr, pass)
		got = append(got, bs[0].WeightPermille())
		if diff := cmp.Diff([]int{1000, 1000}, got); diff != "" {
			t.Errorf("weight permille at start and after recovery without slow_start (-want +got):\n%s", diff)
		}
	})
}

func TestProbeTiming(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const n = 50
		interval := 5 * time.Second
		f := newFakeProber()
		bs := newBackends(t, n)
		for _, b := range bs {
			f.setAuto(b.Address(), pass)
		}
		p, err := NewPool(testConfig(), bs, nil, WithProber(f))
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		p.Start()
		time.Sleep(10*interval + interval/2)
		p.Close()
		firsts := map[time.Time]bool{}
		for _, b := range bs {
			times := f.probeTimes(b.Address())
			if len(times) < 10 || len(times) > 11 {
				t.Errorf("%s: %d probes in 10.5 intervals, want 10 or 11", b, len(times))
				continue
			}
			if d := times[0].Sub(start); d < 0 || d >= interval {
				t.Errorf("%s: first probe after %v, want within the first interval", b, d)
			}
			firsts[times[0]] = true
			for i := 1; i < len(times); i++ {
				if gap := times[i].Sub(times[i-1]); gap < interval*95/100 || gap > interval*105/100 {
					t.Errorf("%s: probes %d and %d are %v apart, want %v ± 5 %%", b, i-1, i, gap, interval)
				}
			}
		}
		if len(firsts) < n/2 {
			t.Errorf("first probes of %d backends fall on %d distinct instants, want them spread out", n, len(firsts))
		}
	})
}

// slowProber takes longer than the interval and counts overlapping probes.
type slowProber struct {
	took           time.Duration
	inFlight, most int
	probes         []time.Time
	mu             chan struct{} // a one-slot lock usable inside a bubble
}

func (s *slowProber) Probe(ctx context.Context, addr string) Result {
	s.mu <- struct{}{}
	s.inFlight++
	s.most = max(s.most, s.inFlight)
	s.probes = append(s.probes, time.Now())
	<-s.mu
	time.Sleep(s.took)
	s.mu <- struct{}{}
	s.inFlight--
	<-s.mu
	return pass
}

func TestSlowProbeSkipsToNextInterval(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := testConfig()
		cfg.Health.Timeout = dur(time.Minute)
		s := &slowProber{took: 12 * time.Second, mu: make(chan struct{}, 1)}
		p, err := NewPool(cfg, newBackends(t, 1), nil, WithProber(s))
		if err != nil {
			t.Fatal(err)
		}
		p.Start()
		time.Sleep(100 * time.Second)
		p.Close()
		if s.most != 1 {
			t.Errorf("at most %d probes of one backend ran at once, want 1", s.most)
		}
		for i := 1; i < len(s.probes); i++ {
			// 12 s probes at a 5 s interval: the next starts at the
			// boundary after the probe ends, 15 s after the last began
			// (and up to one 50 ms slot later, see nextProbe).
			if gap := s.probes[i].Sub(s.probes[i-1]); gap < 15*time.Second || gap > 15*time.Second+50*time.Millisecond {
				t.Errorf("probes %d and %d are %v apart, want 15s (+ up to 50ms)", i-1, i, gap)
			}
		}
		if len(s.probes) < 5 {
			t.Errorf("%d probes in 100 s, want at least 5", len(s.probes))
		}
	})
}

func TestNewPoolContinuesARamp(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// A reload builds a new Pool over a backend halfway up its ramp.
		cfg := testConfig()
		cfg.Health.Type = "none"
		cfg.SlowStart = dur(10 * time.Second)
		bs := newBackends(t, 1)
		if err := bs[0].SetWeightPermille(550); err != nil {
			t.Fatal(err)
		}
		p, err := NewPool(cfg, bs, nil)
		if err != nil {
			t.Fatal(err)
		}
		p.Start()
		defer p.Close()
		var got []int
		for range 3 {
			synctest.Wait()
			got = append(got, bs[0].WeightPermille())
			time.Sleep(2500 * time.Millisecond)
		}
		if diff := cmp.Diff([]int{550, 750, 1000}, got); diff != "" {
			t.Errorf("weight permille every 2.5 s after NewPool (-want +got):\n%s", diff)
		}
	})
}
