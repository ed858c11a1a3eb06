package vrrp

import (
	"net/netip"
	"testing"
	"time"
)

// newMaster returns an owner in Master at t0 and a buffer for its adverts.
func newMaster(tb testing.TB) (*Machine, []byte) {
	tb.Helper()
	cfg := baseConfig()
	cfg.Priority = 255
	cfg.VIPs = []netip.Addr{vip, netip.MustParseAddr("198.18.0.101")}
	m, err := NewMachine(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	m.Start(t0)
	return m, make([]byte, 0, 64)
}

// advertStep is one turn of the master's loop: wake at the deadline, tick,
// marshal what must be sent.
func advertStep(tb testing.TB, m *Machine, buf []byte) []byte {
	now := m.NextDeadline()
	for _, act := range m.Tick(now) {
		if act.Kind != ActionSendAdvert {
			tb.Fatalf("unexpected action %v", act)
		}
		a := m.Advert(act.Priority)
		var err error
		buf, err = a.AppendMarshal(buf[:0], lb2, Group4)
		if err != nil {
			tb.Fatal(err)
		}
	}
	return buf
}

// receiveStep is one turn of a backup's loop: parse an advert, hand it over.
func receiveStep(tb testing.TB, m *Machine, adv *Advert, wire []byte, now time.Time) {
	if err := ParseInto(adv, wire, lb1, Group4); err != nil {
		tb.Fatal(err)
	}
	if acts := m.HandleAdvert(now, lb1, adv); len(acts) != 0 {
		tb.Fatalf("unexpected actions %v", acts)
	}
}

func TestSteadyPathDoesNotAllocate(t *testing.T) {
	m, buf := newMaster(t)
	if n := testing.AllocsPerRun(1000, func() { buf = advertStep(t, m, buf) }); n != 0 {
		t.Errorf("master advert path: %v allocations per advert, want 0", n)
	}

	b, err := NewMachine(baseConfig())
	if err != nil {
		t.Fatal(err)
	}
	b.Start(t0)
	src := Advert{Version: 3, VRID: 51, Priority: 150, Interval: time.Second, Addrs: []netip.Addr{vip}}
	wire, err := src.Marshal(lb1, Group4)
	if err != nil {
		t.Fatal(err)
	}
	adv := Advert{Addrs: make([]netip.Addr, 0, 4)}
	now := t0
	if n := testing.AllocsPerRun(1000, func() {
		now = now.Add(time.Second)
		receiveStep(t, b, &adv, wire, now)
	}); n != 0 {
		t.Errorf("backup receive path: %v allocations per advert, want 0", n)
	}
}

// BenchmarkAdvertPath measures a master's turn: Tick, Advert, AppendMarshal.
func BenchmarkAdvertPath(b *testing.B) {
	m, buf := newMaster(b)
	b.ReportAllocs()
	for b.Loop() {
		buf = advertStep(b, m, buf)
	}
}

// BenchmarkReceivePath measures a backup's turn: ParseInto, HandleAdvert.
func BenchmarkReceivePath(b *testing.B) {
	m, err := NewMachine(baseConfig())
	if err != nil {
		b.Fatal(err)
	}
	m.Start(t0)
	src := Advert{Version: 3, VRID: 51, Priority: 150, Interval: time.Second, Addrs: []netip.Addr{vip}}
	wire, err := src.Marshal(lb1, Group4)
	if err != nil {
		b.Fatal(err)
	}
	adv := Advert{Addrs: make([]netip.Addr, 0, 4)}
	now := t0
	b.ReportAllocs()
	for b.Loop() {
		now = now.Add(time.Second)
		receiveStep(b, m, &adv, wire, now)
	}
}
