package balance

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestNewBackendRejectsBadConfig(t *testing.T) {
	for _, tc := range []struct {
		name string
		c    BackendConfig
		want string
	}{
		{"no address", BackendConfig{Weight: 1}, "balance: backend address is empty"},
		{"weight too big", BackendConfig{Address: "a:1", Weight: 257}, "balance: backend a:1: weight 257 out of range 0..256"},
		{"negative weight", BackendConfig{Address: "a:1", Weight: -1}, "balance: backend a:1: weight -1 out of range 0..256"},
		{"negative max", BackendConfig{Address: "a:1", MaxConnections: -5}, "balance: backend a:1: max_connections -5 is negative"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewBackend(tc.c)
			if err == nil || err.Error() != tc.want {
				t.Errorf("NewBackend(%+v) error = %v, want %q", tc.c, err, tc.want)
			}
		})
	}
}

func TestBackendSettersRejectBadValues(t *testing.T) {
	b := newBackends(t, 10)[0]
	for name, err := range map[string]error{
		"state":    b.SetState(State(9)),
		"weight":   b.SetWeight(300),
		"permille": b.SetWeightPermille(1001),
		"agent":    b.SetAgentPercent(101),
		"max":      b.SetMaxConnections(-1),
	} {
		if err == nil || !strings.HasPrefix(err.Error(), "balance: backend 198.18.0.1:8080: ") {
			t.Errorf("%s: error = %v, want one naming the backend", name, err)
		}
	}
	// Rejected values leave the backend as it was.
	got := []int{b.Weight(), b.WeightPermille(), b.AgentPercent(), b.MaxConnections(), int(b.State())}
	if diff := cmp.Diff([]int{10, 1000, 100, 0, int(StateUp)}, got); diff != "" {
		t.Errorf("backend changed by rejected values (-want +got):\n%s", diff)
	}
}

func TestEffectiveWeight(t *testing.T) {
	for _, tc := range []struct {
		name     string
		weight   int
		state    State
		ejected  bool
		permille int
		want     int
	}{
		{"up", 10, StateUp, false, 1000, 10000},
		{"slow start 10%", 10, StateUp, false, 100, 1000},
		{"draining", 10, StateDraining, false, 1000, 0},
		{"disabled", 10, StateDisabled, false, 1000, 0},
		{"down", 10, StateDown, false, 1000, 0},
		{"ejected", 10, StateUp, true, 1000, 0},
		{"weight 0", 0, StateUp, false, 1000, 0},
		{"permille 0", 10, StateUp, false, 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := newBackends(t, tc.weight)[0]
			must(t, b.SetState(tc.state))
			b.SetEjected(tc.ejected)
			must(t, b.SetWeightPermille(tc.permille))
			if got := b.EffectiveWeight(); got != tc.want {
				t.Errorf("EffectiveWeight() = %d, want %d", got, tc.want)
			}
			if got := b.Usable(); got != (tc.want > 0) {
				t.Errorf("Usable() = %v, want %v", got, tc.want > 0)
			}
		})
	}
}

func TestTryIncHonoursMaxConnections(t *testing.T) {
	b, err := NewBackend(BackendConfig{Address: "a:1", Weight: 1, MaxConnections: 2})
	must(t, err)
	got := []bool{b.TryInc(), b.TryInc(), b.TryInc()}
	if diff := cmp.Diff([]bool{true, true, false}, got); diff != "" {
		t.Errorf("TryInc results (-want +got):\n%s", diff)
	}
	b.Dec()
	b.Dec()
	b.Dec() // one too many: stays at zero
	if b.Active() != 0 {
		t.Errorf("Active() = %d after extra Dec, want 0", b.Active())
	}
	b.Inc()
	if b.Active() != 1 {
		t.Errorf("Active() = %d, want 1", b.Active())
	}
}

func TestSlowStartPermille(t *testing.T) {
	w := 60 * time.Second
	for _, tc := range []struct {
		elapsed, window time.Duration
		want            int
	}{
		{0, w, 100},
		{-time.Second, w, 100},
		{w / 2, w, 550},
		{w / 3, w, 400},
		{w - time.Millisecond, w, 950},
		{w, w, 1000},
		{2 * w, w, 1000},
		{time.Second, 0, 1000},
	} {
		if got := SlowStartPermille(tc.elapsed, tc.window); got != tc.want {
			t.Errorf("SlowStartPermille(%v, %v) = %d, want %d", tc.elapsed, tc.window, got, tc.want)
		}
	}
}

func TestStateString(t *testing.T) {
	got := []string{StateUp.String(), StateDraining.String(), StateDisabled.String(), StateDown.String(), State(7).String()}
	if diff := cmp.Diff([]string{"up", "draining", "disabled", "down", "state(7)"}, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
