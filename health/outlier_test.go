package health

import (
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"

	"lbd/config"
	"lbd/proxy/balance"
)

// outlierConfig returns a pool with no active checks whose backends are
// ejected after 5 errors in a row for 30 s, 60 s, ... at most 75 s.
func outlierTestConfig() (cfg config.Pool) {
	cfg = testConfig()
	cfg.Health.Type = "none"
	cfg.Outlier.ConsecutiveErrors = 5
	cfg.Outlier.EjectionTime = dur(30 * time.Second)
	cfg.Outlier.MaxEjectionTime = dur(75 * time.Second)
	cfg.Outlier.MaxEjectionPercent = 50
	return cfg
}

func report(p *Pool, b *balance.Backend, o Outcome, n int) {
	for range n {
		p.Report(b, o)
	}
}

// ejectionLasts reports how long b stays ejected, checked every 100 ms of
// fake time (0: not ejected now).
func ejectionLasts(t *testing.T, p *Pool, b *balance.Backend) time.Duration {
	t.Helper()
	start := time.Now()
	for b.Ejected() {
		time.Sleep(100 * time.Millisecond)
		synctest.Wait()
		if time.Since(start) > time.Hour {
			t.Fatalf("%s still ejected after an hour", b)
		}
	}
	return time.Since(start)
}

func TestEjectionBackoff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p, bs, logs := newTestPool(t, outlierTestConfig(), 3)
		b := bs[0]

		report(p, b, ConnectError, 4)
		p.Report(b, Success) // breaks the run
		report(p, b, Status5xx, 4)
		if b.Ejected() {
			t.Fatal("ejected after 4 errors, a success and 4 errors; want 5 in a row")
		}

		var got []time.Duration
		for range 4 {
			report(p, b, Reset, 5)
			if !b.Ejected() || p.Healthy() != 2 {
				t.Fatalf("after 5 errors in a row: Ejected() = %v, Healthy() = %d; want true, 2", b.Ejected(), p.Healthy())
			}
			got = append(got, ejectionLasts(t, p, b))
		}
		want := []time.Duration{30 * time.Second, 60 * time.Second, 75 * time.Second, 75 * time.Second}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("ejection lengths: ejection_time × ejections, at most max_ejection_time (-want +got):\n%s", diff)
		}

		// In for max_ejection_time: earlier ejections are forgiven.
		time.Sleep(75 * time.Second)
		report(p, b, Timeout, 5)
		if d := ejectionLasts(t, p, b); d != 30*time.Second {
			t.Errorf("ejection after 75 s of good behaviour lasts %v, want 30s again", d)
		}

		st := p.Snapshot()[0]
		if st.Ejections != 5 || st.Errors != (Errors{ConnectErrors: 4, Resets: 20, Status5xx: 4, Timeouts: 5}) {
			t.Errorf("Snapshot: Ejections = %d, Errors = %+v; want 5 and the reported counts", st.Ejections, st.Errors)
		}
		if n := logs.count("backend ejected"); n != 5 {
			t.Errorf("%d \"backend ejected\" log lines, want 5", n)
		}
	})
}

func TestEjectedUntilInSnapshot(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p, bs, _ := newTestPool(t, outlierTestConfig(), 2)
		report(p, bs[1], ConnectError, 5)
		st := p.Snapshot()[1]
		if !st.Ejected || !st.EjectedUntil.Equal(time.Now().Add(30*time.Second)) || st.EffectiveWeight != 0 {
			t.Errorf("Snapshot after ejection: Ejected %v, EjectedUntil %v, EffectiveWeight %d; want true, now+30s, 0",
				st.Ejected, st.EjectedUntil, st.EffectiveWeight)
		}
	})
}

func TestMaxEjectionPercent(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// 3 backends at 50 %: one may be ejected at a time. Two fail on
		// every request for ten minutes.
		p, bs, _ := newTestPool(t, outlierTestConfig(), 3)
		ejectedOnce := map[string]bool{}
		for i := range 600 {
			p.Report(bs[0], Success)
			bad := []*balance.Backend{bs[1], bs[2]}
			if i%2 == 1 { // neither always comes first
				bad[0], bad[1] = bad[1], bad[0]
			}
			for _, b := range bad {
				report(p, b, Status5xx, 5)
			}
			synctest.Wait()
			n := 0
			for _, b := range bs {
				if b.Ejected() {
					n++
					ejectedOnce[b.Address()] = true
				}
			}
			if n > 1 {
				t.Fatalf("%d of 3 backends ejected at once with max_ejection_percent 50", n)
			}
			if p.Healthy() < 2 {
				t.Fatalf("Healthy() = %d, want at least 2", p.Healthy())
			}
			time.Sleep(time.Second)
		}
		if !ejectedOnce[bs[1].Address()] || !ejectedOnce[bs[2].Address()] || ejectedOnce[bs[0].Address()] {
			t.Errorf("backends ever ejected: %v; want both failing ones, in turn, and not the good one", ejectedOnce)
		}
	})
}

func TestOutlierOffAndPoolOfOne(t *testing.T) {
	for _, tc := range []struct {
		name   string
		errors int
		n      int
	}{
		{"consecutive_errors 0", 0, 3},
		{"pool of one below 100 %", 5, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				cfg := outlierTestConfig()
				cfg.Outlier.ConsecutiveErrors = tc.errors
				p, bs, _ := newTestPool(t, cfg, tc.n)
				report(p, bs[0], ConnectError, 100)
				if bs[0].Ejected() || p.Healthy() != tc.n {
					t.Errorf("after 100 errors: Ejected() = %v, Healthy() = %d; want false, %d", bs[0].Ejected(), p.Healthy(), tc.n)
				}
				if got := p.Snapshot()[0].Errors.ConnectErrors; got != 100 {
					t.Errorf("ConnectErrors = %d, want 100 (counted even when not ejecting)", got)
				}
			})
		})
	}
}

func TestSlowStartAfterEjection(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := outlierTestConfig()
		cfg.SlowStart = dur(2 * time.Second)
		p, bs, _ := newTestPool(t, cfg, 2)
		report(p, bs[0], ConnectError, 5)
		time.Sleep(30 * time.Second)
		synctest.Wait()
		var got []int
		for range 5 {
			got = append(got, bs[0].WeightPermille())
			time.Sleep(500 * time.Millisecond)
			synctest.Wait()
		}
		if diff := cmp.Diff([]int{100, 300, 550, 750, 1000}, got); diff != "" {
			t.Errorf("weight permille every 0.5 s after the ejection ended (-want +got):\n%s", diff)
		}
	})
}

func TestReportIgnoresForeignBackends(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p, _, _ := newTestPool(t, outlierTestConfig(), 2)
		other := newBackends(t, 1)[0]
		report(p, other, ConnectError, 10)
		report(p, nil, ConnectError, 10)
		report(p, other, Outcome(200), 10)
		if other.Ejected() || p.Healthy() != 2 {
			t.Errorf("foreign reports changed something: Ejected() = %v, Healthy() = %d", other.Ejected(), p.Healthy())
		}
	})
}
