package vrrp

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// t0 is the fake clock's origin; steps give times as offsets from it.
var t0 = time.Date(2026, 11, 26, 0, 0, 0, 0, time.UTC)

// never is the expected NextDeadline when no timer runs.
const never = time.Duration(-1)

// Master_Down_Interval and Skew_Time at a 1 s interval, priority 100:
// 3 s + (256−100)/256 s.
const (
	skew100 = 609375 * time.Microsecond
	down100 = 3*time.Second + skew100
)

// event is one input to a Machine.
type event struct {
	name string
	fn   func(m *Machine, now time.Time) []Action
}

func start() event { return event{"start", (*Machine).Start} }
func tick() event  { return event{"tick", (*Machine).Tick} }
func shutdown() event {
	return event{"shutdown", (*Machine).Shutdown}
}
func demote() event  { return event{"demote", (*Machine).Demote} }
func promote() event { return event{"promote", (*Machine).Promote} }

func track(i int, failing bool) event {
	return event{"track", func(m *Machine, now time.Time) []Action { return m.SetTrack(now, i, failing) }}
}

func link(up bool) event {
	return event{"link", func(m *Machine, now time.Time) []Action { return m.SetLink(now, up) }}
}

// advFrom is an advert for VRID 51 with the test's VIP, from src.
func advFrom(src netip.Addr, prio uint8, interval time.Duration) event {
	return advert(src, Advert{Version: 3, Type: 1, VRID: 51, Priority: prio, Interval: interval, Addrs: []netip.Addr{vip}})
}

// adv is an advert from lb1 (198.18.0.11), the usual peer.
func adv(prio uint8, interval time.Duration) event { return advFrom(lb1, prio, interval) }

func advert(src netip.Addr, a Advert) event {
	return event{"advert", func(m *Machine, now time.Time) []Action {
		if m.cfg.Version == 2 && a.Version == 3 {
			a.Version = 2
		}
		return m.HandleAdvert(now, src, &a)
	}}
}

// step feeds ev at t0+at and checks the actions, the state after and
// NextDeadline (as an offset from t0, or never).
type step struct {
	at    time.Duration
	ev    event
	want  string // actions, comma separated
	state State
	next  time.Duration
}

// baseConfig is lb2 of the lab: 198.18.0.12, priority 100, VRRPv3 at 1 s.
func baseConfig() Config {
	return Config{
		Version:   3,
		VRID:      51,
		Priority:  100,
		Interval:  time.Second,
		Preempt:   true,
		LocalAddr: lb2,
		VIPs:      []netip.Addr{vip},
	}
}

func with(f func(c *Config)) Config {
	c := baseConfig()
	f(&c)
	return c
}

func actionString(acts []Action) string {
	s := make([]string, len(acts))
	for i, a := range acts {
		s[i] = a.String()
	}
	return strings.Join(s, ", ")
}

func runSteps(t *testing.T, cfg Config, steps []step) *Machine {
	t.Helper()
	m, err := NewMachine(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for i, s := range steps {
		got := actionString(s.ev.fn(m, t0.Add(s.at)))
		if got != s.want {
			t.Errorf("step %d (%s at %v): actions %q, want %q", i, s.ev.name, s.at, got, s.want)
		}
		if m.State() != s.state {
			t.Errorf("step %d (%s at %v): state %v, want %v", i, s.ev.name, s.at, m.State(), s.state)
		}
		next := never
		if d := m.NextDeadline(); !d.IsZero() {
			next = d.Sub(t0)
		}
		if next != s.next {
			t.Errorf("step %d (%s at %v): next deadline %v, want %v", i, s.ev.name, s.at, next, s.next)
		}
	}
	return m
}

func TestTransitions(t *testing.T) {
	const (
		I = StateInit
		B = StateBackup
		M = StateMaster
		F = StateFault
	)
	sec := time.Second
	ms := time.Millisecond
	tests := []struct {
		name  string
		cfg   Config
		steps []step
	}{
		{
			name: "6.4.1 owner starts as master and advertises every interval",
			cfg:  with(func(c *Config) { c.Priority = 255 }),
			steps: []step{
				{0, start(), "master, send 255", M, sec},
				{sec - 1, tick(), "", M, sec},
				{sec, tick(), "send 255", M, 2 * sec},
				{2*sec + 300*ms, tick(), "send 255", M, 3 * sec}, // late wake-up keeps the cadence
				{5 * sec, tick(), "send 255", M, 6 * sec},        // more than an interval late: restart from now
			},
		},
		{
			name: "6.4.1 non-owner starts as backup, 6.4.2 Master_Down_Timer fires",
			cfg:  baseConfig(),
			steps: []step{
				{0, start(), "backup", B, down100},
				{down100 - 1, tick(), "", B, down100},
				{down100, tick(), "master, send 100", M, down100 + sec},
				{down100 + sec, tick(), "send 100", M, down100 + 2*sec},
			},
		},
		{
			name: "6.4.2 backup: higher advert resets the timer; master 3.609375 s after the last one",
			cfg:  baseConfig(),
			steps: []step{
				{0, start(), "backup", B, down100},
				{500 * ms, adv(150, sec), "", B, 500*ms + down100},
				{1500 * ms, adv(150, sec), "", B, 1500*ms + down100},
				{1500*ms + down100 - 1, tick(), "", B, 1500*ms + down100},
				{1500*ms + down100, tick(), "master, send 100", M, 2500*ms + down100},
			},
		},
		{
			name: "6.4.2 backup learns Master_Adver_Interval (v3)",
			cfg:  baseConfig(),
			steps: []step{
				{0, start(), "backup", B, down100},
				// 3 × 200ms + 156 × 200ms / 256 = 721.875ms
				{sec, adv(150, 200*ms), "", B, sec + 721875*time.Microsecond},
				{sec + 721875*time.Microsecond, tick(), "master, send 100", M, 2*sec + 721875*time.Microsecond},
			},
		},
		{
			name: "6.4.2 backup receiving priority 0 takes over after Skew_Time",
			cfg:  baseConfig(),
			steps: []step{
				{0, start(), "backup", B, down100},
				{sec, adv(150, sec), "", B, sec + down100},
				{1500 * ms, adv(0, sec), "", B, 1500*ms + skew100},
				{1500*ms + skew100, tick(), "master, send 100", M, 2500*ms + skew100},
			},
		},
		{
			name: "6.4.2 backup with preempt discards a lower advert and takes over",
			cfg:  baseConfig(),
			steps: []step{
				{0, start(), "backup", B, down100},
				{sec, adv(50, sec), "", B, down100},
				{2 * sec, adv(50, sec), "", B, down100},
				{down100, tick(), "master, send 100", M, down100 + sec},
				{down100 + 100*ms, adv(50, sec), "send 100", M, down100 + sec}, // 6.4.3 lower: answered
			},
		},
		{
			name: "6.4.2 backup without preempt follows a lower master",
			cfg:  with(func(c *Config) { c.Preempt = false }),
			steps: []step{
				{0, start(), "backup", B, down100},
				{sec, adv(50, sec), "", B, sec + down100},
				{2 * sec, adv(50, sec), "", B, 2*sec + down100},
			},
		},
		{
			name: "6.4.2 backup with preempt follows an equal-priority master",
			cfg:  baseConfig(),
			steps: []step{
				{0, start(), "backup", B, down100},
				{sec, adv(100, sec), "", B, sec + down100},
			},
		},
		{
			name: "6.4.1 the owner preempts even without preempt",
			cfg:  with(func(c *Config) { c.Priority = 255; c.Preempt = false }),
			steps: []step{
				{0, start(), "master, send 255", M, sec},
				{0, demote(), "send 0, backup", B, 3*sec + sec/256},
				{100 * ms, adv(150, sec), "release", B, never},
				{200 * ms, promote(), "", B, 200*ms + 3*sec + sec/256},
				{sec, adv(150, sec), "", B, 200*ms + 3*sec + sec/256}, // lower than 255: discarded
				{200*ms + 3*sec + sec/256, tick(), "master, send 255", M, 1200*ms + 3*sec + sec/256},
			},
		},
		{
			name: "6.4.3 master receiving a higher advert becomes backup",
			cfg:  with(func(c *Config) { c.Priority = 255 }),
			steps: []step{
				{0, start(), "master, send 255", M, sec},
				// An owner meeting another owner with a higher address
				// yields (tie-break); its down timer uses the advert's
				// interval: 3 × 2s + 1 × 2s / 256.
				{500 * ms, advFrom(netip.MustParseAddr("198.18.0.13"), 255, 2*sec), "backup, release", B, 500*ms + 6*sec + 2*sec/256},
			},
		},
		{
			name: "6.4.3 master: higher priority wins, equal priority goes to the higher address",
			cfg:  baseConfig(),
			steps: []step{
				{0, start(), "backup", B, down100},
				{down100, tick(), "master, send 100", M, down100 + sec},
				{4 * sec, adv(100, sec), "send 100", M, down100 + sec}, // 198.18.0.11 < ours: answered
				{4*sec + 100*ms, advFrom(netip.MustParseAddr("198.18.0.13"), 100, sec), "backup, release", B, 4*sec + 100*ms + down100},
			},
		},
		{
			name: "6.4.3 master: higher priority from a lower address wins",
			cfg:  baseConfig(),
			steps: []step{
				{0, start(), "backup", B, down100},
				{down100, tick(), "master, send 100", M, down100 + sec},
				{4 * sec, adv(101, sec), "backup, release", B, 4*sec + down100},
			},
		},
		{
			name: "6.4.3 master receiving priority 0 advertises at once and resets Adver_Timer",
			cfg:  with(func(c *Config) { c.Priority = 255 }),
			steps: []step{
				{0, start(), "master, send 255", M, sec},
				{300 * ms, adv(0, sec), "send 255", M, 1300 * ms},
				{1300 * ms, tick(), "send 255", M, 2300 * ms},
			},
		},
		{
			name: "6.4.3 shutdown of a master sends priority 0 and releases",
			cfg:  with(func(c *Config) { c.Priority = 255 }),
			steps: []step{
				{0, start(), "master, send 255", M, sec},
				{300 * ms, shutdown(), "send 0, init, release", I, never},
				{sec, tick(), "", I, never},
				{sec, adv(150, sec), "", I, never},
				{2 * sec, start(), "master, send 255", M, 3 * sec},
			},
		},
		{
			name: "6.4.2 shutdown of a backup",
			cfg:  baseConfig(),
			steps: []step{
				{0, start(), "backup", B, down100},
				{sec, shutdown(), "init", I, never},
				{down100, tick(), "", I, never},
			},
		},
		{
			name: "failing tracks lower the priority of a master's adverts",
			cfg: with(func(c *Config) {
				c.Priority = 150
				c.Tracks = []Track{{Name: "pool app", Weight: 60}, {Name: "script", Weight: 100}}
			}),
			steps: []step{
				{0, start(), "backup", B, 3*sec + 106*sec/256},
				{3*sec + 106*sec/256, tick(), "master, send 150", M, 4*sec + 106*sec/256},
				{4 * sec, track(0, true), "", M, 4*sec + 106*sec/256},
				{4*sec + 106*sec/256, tick(), "send 90", M, 5*sec + 106*sec/256},
				{5 * sec, track(1, true), "", M, 5*sec + 106*sec/256}, // 150−160 clamps to 1
				{5*sec + 106*sec/256, tick(), "send 1", M, 6*sec + 106*sec/256},
				{5500 * ms, adv(100, sec), "backup, release", B, 5500*ms + 3*sec + 255*sec/256},
				{6 * sec, track(1, false), "", B, 5500*ms + 3*sec + 255*sec/256},
				{6 * sec, track(0, false), "", B, 5500*ms + 3*sec + 255*sec/256},
				// Priority 150 again: the next advert of 100 is discarded.
				{6500 * ms, adv(100, sec), "", B, 5500*ms + 3*sec + 255*sec/256},
			},
		},
		{
			name: "fault on a weight-0 track, from backup, and recovery",
			cfg:  with(func(c *Config) { c.Tracks = []Track{{Name: "eth0", Weight: 0}} }),
			steps: []step{
				{0, start(), "backup", B, down100},
				{sec, track(0, true), "fault", F, never},
				{2 * sec, adv(0, sec), "", F, never},
				{10 * sec, tick(), "", F, never},
				{11 * sec, track(0, false), "backup", B, 11*sec + down100},
			},
		},
		{
			name: "fault from master sends priority 0 and releases; owner recovers as master",
			cfg: with(func(c *Config) {
				c.Priority = 255
				c.Tracks = []Track{{Name: "eth0", Weight: 0}}
			}),
			steps: []step{
				{0, start(), "master, send 255", M, sec},
				{500 * ms, track(0, true), "send 0, fault, release", F, never},
				{2 * sec, track(0, false), "master, send 255", M, 3 * sec},
			},
		},
		{
			name: "link down is a fault; start while faulty",
			cfg:  baseConfig(),
			steps: []step{
				{0, link(false), "", I, never},
				{0, start(), "fault", F, never},
				{sec, link(true), "backup", B, sec + down100},
				{sec + down100, tick(), "master, send 100", M, 2*sec + down100},
				{5 * sec, link(false), "send 0, fault, release", F, never},
				{5 * sec, link(false), "", F, never},
			},
		},
		{
			name: "demote: priority 0 once, keep the VIPs until the new master speaks, never master until promote",
			cfg:  with(func(c *Config) { c.Priority = 150 }),
			steps: []step{
				{0, start(), "backup", B, 3*sec + 106*sec/256},
				{3*sec + 106*sec/256, tick(), "master, send 150", M, 4*sec + 106*sec/256},
				{4 * sec, demote(), "send 0, backup", B, 7*sec + 106*sec/256},
				{4 * sec, demote(), "", B, 7*sec + 106*sec/256},
				{4*sec + 500*ms, adv(0, sec), "", B, 7*sec + 106*sec/256}, // not a new master
				{4*sec + 609*ms, adv(100, sec), "release", B, never},
				{5 * sec, adv(0, sec), "", B, never}, // would take over, but demoted
				{20 * sec, tick(), "", B, never},     // no timer makes it master
				{21 * sec, promote(), "", B, 21*sec + 3*sec + 106*sec/256},
				{22 * sec, adv(100, sec), "", B, 21*sec + 3*sec + 106*sec/256}, // preempts again
				{24*sec + 106*sec/256, tick(), "master, send 150", M, 25*sec + 106*sec/256},
			},
		},
		{
			name: "demote with no other router: release after Master_Down_Interval",
			cfg:  with(func(c *Config) { c.Priority = 255 }),
			steps: []step{
				{0, start(), "master, send 255", M, sec},
				{500 * ms, demote(), "send 0, backup", B, 3500*ms + sec/256},
				{3500*ms + sec/256 - 1, tick(), "", B, 3500*ms + sec/256},
				{3500*ms + sec/256, tick(), "release", B, never},
			},
		},
		{
			name: "demote of a backup, and of a starting owner",
			cfg:  with(func(c *Config) { c.Priority = 255 }),
			steps: []step{
				{0, demote(), "", I, never},
				{0, start(), "backup", B, never},
				{sec, adv(0, sec), "", B, never},
				{2 * sec, promote(), "", B, 5*sec + sec/256},
			},
		},
		{
			name: "demote hold ends on fault",
			cfg:  with(func(c *Config) { c.Priority = 255 }),
			steps: []step{
				{0, start(), "master, send 255", M, sec},
				{500 * ms, demote(), "send 0, backup", B, 3500*ms + sec/256},
				{600 * ms, link(false), "fault, release", F, never},
			},
		},
		{
			name: "preempt_delay holds preemption after start-up, keepalived style",
			cfg: with(func(c *Config) {
				c.Priority = 150
				c.PreemptDelay = 5 * sec
			}),
			steps: []step{
				{0, start(), "backup", B, 3*sec + 106*sec/256},
				// Lower adverts before the delay ends reset the timer.
				{sec, adv(100, sec), "", B, 4*sec + 106*sec/256},
				{4 * sec, adv(100, sec), "", B, 7*sec + 106*sec/256},
				// From 5 s on they are discarded: master at 7.4140625 s.
				{5 * sec, adv(100, sec), "", B, 7*sec + 106*sec/256},
				{6 * sec, adv(100, sec), "", B, 7*sec + 106*sec/256},
				{7*sec + 106*sec/256, tick(), "master, send 150", M, 8*sec + 106*sec/256},
			},
		},
		{
			name: "preempt_delay restarts after a higher master",
			cfg: with(func(c *Config) {
				c.Priority = 150
				c.PreemptDelay = 5 * sec
			}),
			steps: []step{
				{0, start(), "backup", B, 3*sec + 106*sec/256},
				{sec, adv(200, sec), "", B, 4*sec + 106*sec/256},       // clears the delay
				{10 * sec, adv(100, sec), "", B, 13*sec + 106*sec/256}, // starts it: until 15 s
				{14 * sec, adv(100, sec), "", B, 17*sec + 106*sec/256},
				{15 * sec, adv(100, sec), "", B, 17*sec + 106*sec/256}, // discarded
				{17*sec + 106*sec/256, tick(), "master, send 150", M, 18*sec + 106*sec/256},
			},
		},
		{
			name: "preempt_delay does not hold back a takeover when the master is gone",
			cfg: with(func(c *Config) {
				c.Priority = 150
				c.PreemptDelay = 60 * sec
			}),
			steps: []step{
				{0, start(), "backup", B, 3*sec + 106*sec/256},
				{3*sec + 106*sec/256, tick(), "master, send 150", M, 4*sec + 106*sec/256},
			},
		},
		{
			name: "own adverts, other VRIDs and versions are ignored",
			cfg:  baseConfig(),
			steps: []step{
				{0, start(), "backup", B, down100},
				{sec, advFrom(lb2, 200, sec), "", B, down100},
				{sec, advert(lb1, Advert{Version: 3, VRID: 52, Priority: 200, Interval: sec, Addrs: []netip.Addr{vip}}), "", B, down100},
				{sec, advert(lb1, Advert{Version: 2, VRID: 51, Priority: 200, Interval: sec, Addrs: []netip.Addr{vip}}), "", B, down100},
				{down100, tick(), "master, send 100", M, down100 + sec},
				{4 * sec, advFrom(lb2, 0, sec), "", M, down100 + sec},
			},
		},
		{
			// Another cluster using our VRID: counted, reported, ignored
			// (keepalived does the same), so it cannot take our VIPs.
			name: "v3: a different address list is counted and ignored",
			cfg:  baseConfig(),
			steps: []step{
				{0, start(), "backup", B, down100},
				{sec, advert(lb1, Advert{Version: 3, VRID: 51, Priority: 200, Interval: sec, Addrs: []netip.Addr{lb1}}), "", B, down100},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			runSteps(t, tt.cfg, tt.steps)
		})
	}
}

func TestTransitionsV2(t *testing.T) {
	sec := time.Second
	v2 := func(c *Config) {
		c.Version = 2
		c.Interval = 2 * sec
		c.AuthType = AuthSimple
		c.AuthData = [8]byte{'p', 'w'}
	}
	// RFC 3768: Skew_Time is (256 − Priority) / 256 seconds whatever the
	// interval, and the instance keeps its own interval.
	down := 6*sec + skew100
	good := Advert{Version: 2, VRID: 51, Priority: 150, Interval: 2 * sec, Addrs: []netip.Addr{vip}, AuthType: AuthSimple, AuthData: [8]byte{'p', 'w'}}
	mod := func(f func(a *Advert)) Advert { a := good; f(&a); return a }
	steps := []step{
		{0, start(), "backup", StateBackup, down},
		{sec, advert(lb1, good), "", StateBackup, sec + down},
		{2 * sec, advert(lb1, mod(func(a *Advert) { a.Interval = sec })), "", StateBackup, sec + down},
		{2 * sec, advert(lb1, mod(func(a *Advert) { a.AuthData = [8]byte{'x'} })), "", StateBackup, sec + down},
		{2 * sec, advert(lb1, mod(func(a *Advert) { a.AuthType = AuthNone })), "", StateBackup, sec + down},
		{2 * sec, advert(lb1, mod(func(a *Advert) { a.Addrs = []netip.Addr{lb1} })), "", StateBackup, sec + down},
		// An owner's advert with another address list is obeyed.
		{3 * sec, advert(lb1, mod(func(a *Advert) { a.Addrs = []netip.Addr{lb1}; a.Priority = 255 })), "", StateBackup, 3*sec + down},
		{3*sec + 500*time.Millisecond, advert(lb1, mod(func(a *Advert) { a.Priority = 0 })), "", StateBackup, 3*sec + 500*time.Millisecond + skew100},
		{3*sec + 500*time.Millisecond + skew100, tick(), "master, send 100", StateMaster, 5*sec + 500*time.Millisecond + skew100},
	}
	m := runSteps(t, with(v2), steps)
	want := Counters{
		AdvertsSent:          1,
		AdvertsReceived:      7,
		PriorityZeroReceived: 1,
		Transitions:          2,
		BecomeMaster:         1,
		IntervalErrors:       1,
		AuthErrors:           2,
		AddrListErrors:       2,
	}
	if diff := cmp.Diff(want, m.Counters()); diff != "" {
		t.Errorf("counters (-want +got):\n%s", diff)
	}
	a := m.Advert(100)
	if diff := cmp.Diff(mod(func(a *Advert) { a.Priority = 100; a.Type = TypeAdvert }), a, equateAddr); diff != "" {
		t.Errorf("Advert (-want +got):\n%s", diff)
	}
}

func TestCounters(t *testing.T) {
	sec := time.Second
	m := runSteps(t, baseConfig(), []step{
		{0, start(), "backup", StateBackup, down100},
		{sec, adv(150, sec), "", StateBackup, sec + down100},
		{2 * sec, adv(50, sec), "", StateBackup, sec + down100},
		{2 * sec, advFrom(lb2, 50, sec), "", StateBackup, sec + down100},
		{2 * sec, advert(lb1, Advert{Version: 3, VRID: 9, Priority: 1, Interval: sec, Addrs: []netip.Addr{vip}}), "", StateBackup, sec + down100},
		{sec + down100, tick(), "master, send 100", StateMaster, 2*sec + down100},
		{5 * sec, adv(0, sec), "send 100", StateMaster, 6 * sec},
		{5 * sec, adv(50, sec), "send 100", StateMaster, 6 * sec},
		{5500 * time.Millisecond, demote(), "send 0, backup", StateBackup, 5500*time.Millisecond + down100},
		{6 * sec, adv(150, sec), "release", StateBackup, never},
	})
	want := Counters{
		AdvertsSent:          4,
		AdvertsReceived:      6,
		PriorityZeroSent:     1,
		PriorityZeroReceived: 1,
		Transitions:          3,
		BecomeMaster:         1,
		ReleaseMaster:        1,
		LowerPriority:        2,
		OwnAdverts:           1,
		VRIDErrors:           1,
	}
	if diff := cmp.Diff(want, m.Counters()); diff != "" {
		t.Errorf("counters (-want +got):\n%s", diff)
	}
	wantStatus := Status{
		State:          StateBackup,
		Priority:       100,
		Demoted:        true,
		MasterAddr:     lb1,
		MasterPriority: 150,
		MasterInterval: sec,
	}
	if diff := cmp.Diff(wantStatus, m.Status(), equateAddr); diff != "" {
		t.Errorf("status (-want +got):\n%s", diff)
	}
}

func TestNewMachineRejects(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		want string
	}{
		{"version", with(func(c *Config) { c.Version = 4 }), "version 4"},
		{"vrid", with(func(c *Config) { c.VRID = 0 }), "vrid 0"},
		{"priority", with(func(c *Config) { c.Priority = 0 }), "priority 0"},
		{"v3 interval", with(func(c *Config) { c.Interval = 5 * time.Millisecond }), "multiple of 10ms"},
		{"v2 interval", with(func(c *Config) { c.Version = 2; c.Interval = 100 * time.Millisecond }), "whole seconds"},
		{"v3 auth", with(func(c *Config) { c.AuthType = AuthSimple }), "no authentication"},
		{"v2 AH", with(func(c *Config) { c.Version = 2; c.AuthType = AuthAH }), "not supported"},
		{"preempt delay", with(func(c *Config) { c.PreemptDelay = -1 }), "negative"},
		{"local address", with(func(c *Config) { c.LocalAddr = netip.Addr{} }), "no local address"},
		{"no VIP", with(func(c *Config) { c.VIPs = nil }), "0 virtual addresses"},
		{"VIP family", with(func(c *Config) { c.VIPs = []netip.Addr{v6v} }), "not of the family"},
		{"weight", with(func(c *Config) { c.Tracks = []Track{{Name: "x", Weight: 255}} }), "out of range 0..254"},
		{"owner weight", with(func(c *Config) { c.Priority = 255; c.Tracks = []Track{{Name: "app", Weight: 10}} }), "address owner"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewMachine(tt.cfg)
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.HasPrefix(err.Error(), "vrrp: ") {
				t.Errorf("err %v, want one containing %q", err, tt.want)
			}
		})
	}
}
