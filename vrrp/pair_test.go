package vrrp

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// pair simulates routers on one link with a fake clock. Adverts go through
// Marshal and Parse and reach the other routers at once; the transcript
// records what a capture and `ip addr` would show.
type pair struct {
	t      *testing.T
	now    time.Duration // since t0
	nodes  []*simNode
	events []simEvent
	log    []string
	buf    []byte
}

type simNode struct {
	name  string
	addr  netip.Addr
	m     *Machine
	holds bool
}

type simEvent struct {
	at   time.Duration
	name string
	fn   func(m *Machine, now time.Time) []Action
}

func newPair(t *testing.T, cfgs map[string]Config) *pair {
	p := &pair{t: t}
	for _, name := range slices.Sorted(mapKeys(cfgs)) {
		m, err := NewMachine(cfgs[name])
		if err != nil {
			t.Fatal(err)
		}
		p.nodes = append(p.nodes, &simNode{name: name, addr: cfgs[name].LocalAddr, m: m})
	}
	return p
}

func mapKeys(m map[string]Config) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

func (p *pair) node(name string) *simNode {
	for _, n := range p.nodes {
		if n.name == name {
			return n
		}
	}
	p.t.Fatalf("no node %s", name)
	return nil
}

// at schedules an event for node name.
func (p *pair) at(at time.Duration, name string, ev event) {
	p.events = append(p.events, simEvent{at, name, ev.fn})
}

// run advances the clock through events and timers until end, checking
// after each instant that the addresses have at most one holder, and at
// least one once first taken (holdersFrom).
func (p *pair) run(end, holdersFrom time.Duration) {
	for {
		next := end + 1
		for _, e := range p.events {
			next = min(next, e.at)
		}
		for _, n := range p.nodes {
			if d := n.m.NextDeadline(); !d.IsZero() {
				next = min(next, d.Sub(t0))
			}
		}
		if next > end {
			return
		}
		p.now = next
		now := t0.Add(next)
		for _, n := range p.nodes {
			p.apply(n, n.m.Tick(now))
		}
		var later []simEvent
		for _, e := range p.events {
			if e.at == next {
				p.apply(p.node(e.name), e.fn(p.node(e.name).m, now))
			} else {
				later = append(later, e)
			}
		}
		p.events = later
		holders := 0
		for _, n := range p.nodes {
			if n.holds {
				holders++
			}
		}
		if holders > 1 || holders == 0 && next >= holdersFrom {
			p.t.Errorf("%v: %d nodes hold the addresses", next, holders)
		}
	}
}

func (p *pair) apply(n *simNode, acts []Action) {
	// Copy: delivering adverts calls other machines, and n's list is
	// reused by its next call.
	for _, a := range slices.Clone(acts) {
		p.log = append(p.log, fmt.Sprintf("%v %s %s", p.now, n.name, a))
		switch a.Kind {
		case ActionBecomeMaster:
			n.holds = true
		case ActionReleaseVIPs:
			n.holds = false
		case ActionSendAdvert:
			adv := n.m.Advert(a.Priority)
			b, err := adv.AppendMarshal(p.buf[:0], n.addr, Group4)
			if err != nil {
				p.t.Fatal(err)
			}
			got, err := Parse(b, n.addr, Group4)
			if err != nil {
				p.t.Fatal(err)
			}
			for _, o := range p.nodes {
				p.apply(o, o.m.HandleAdvert(t0.Add(p.now), n.addr, got))
			}
		}
	}
}

// noHolderCheck disables pair.run's check that someone holds the addresses.
const noHolderCheck = time.Duration(1<<63 - 1)

func labConfig(local netip.Addr, prio uint8, version int) Config {
	c := baseConfig()
	c.LocalAddr = local
	c.Priority = prio
	c.Version = version
	return c
}

// TestPairKeepalivedTimeline replays cap-v2.pcap of the reference captures:
// lb1 (150) master, SIGTERM sends priority 0, lb2 (100) takes over after its
// Skew_Time (609.375 ms; the capture shows 609.643 ms between frames 3 and 4),
// lb1 restarts and preempts.
func TestPairKeepalivedTimeline(t *testing.T) {
	p := newPair(t, map[string]Config{
		"lb1": labConfig(lb1, 150, 2),
		"lb2": labConfig(lb2, 100, 2),
	})
	p.at(0, "lb1", start())
	p.at(0, "lb2", start())
	p.at(5*time.Second, "lb1", shutdown())
	p.at(8*time.Second, "lb1", start())
	p.run(13*time.Second, noHolderCheck) // shutdown releases at once
	want := `
0s lb1 backup
0s lb2 backup
3.4140625s lb1 master
3.4140625s lb1 send 150
4.4140625s lb1 send 150
5s lb1 send 0
5s lb1 init
5s lb1 release
5.609375s lb2 master
5.609375s lb2 send 100
6.609375s lb2 send 100
7.609375s lb2 send 100
8s lb1 backup
8.609375s lb2 send 100
9.609375s lb2 send 100
10.609375s lb2 send 100
11.4140625s lb1 master
11.4140625s lb1 send 150
11.4140625s lb2 backup
11.4140625s lb2 release
12.4140625s lb1 send 150`
	if diff := cmp.Diff(strings.TrimSpace(want), strings.Join(p.log, "\n")); diff != "" {
		t.Errorf("transcript (-want +got):\n%s", diff)
	}
}

// TestPairTrackPreempt: a failing pool track lowers lb1 to 90, below lb2,
// which preempts Master_Down_Interval (3.609375 s) after lb1's last advert
// above it (4.4140625 s).
func TestPairTrackPreempt(t *testing.T) {
	c1 := labConfig(lb1, 150, 3)
	c1.Tracks = []Track{{Name: "pool app", Weight: 60}}
	p := newPair(t, map[string]Config{"lb1": c1, "lb2": labConfig(lb2, 100, 3)})
	p.at(0, "lb1", start())
	p.at(0, "lb2", start())
	p.at(5*time.Second, "lb1", track(0, true))
	p.run(10*time.Second, 3414062500)
	want := `
0s lb1 backup
0s lb2 backup
3.4140625s lb1 master
3.4140625s lb1 send 150
4.4140625s lb1 send 150
5.4140625s lb1 send 90
6.4140625s lb1 send 90
7.4140625s lb1 send 90
8.0234375s lb2 master
8.0234375s lb2 send 100
8.0234375s lb1 backup
8.0234375s lb1 release
9.0234375s lb2 send 100`
	if diff := cmp.Diff(strings.TrimSpace(want), strings.Join(p.log, "\n")); diff != "" {
		t.Errorf("transcript (-want +got):\n%s", diff)
	}
}

// TestPairDemoteMakeBeforeBreak: lbctl demote on the master hands the
// addresses over without a moment in which no node holds them; promote
// brings them back by preemption.
func TestPairDemoteMakeBeforeBreak(t *testing.T) {
	p := newPair(t, map[string]Config{
		"lb1": labConfig(lb1, 150, 3),
		"lb2": labConfig(lb2, 100, 3),
	})
	p.at(0, "lb1", start())
	p.at(0, "lb2", start())
	p.at(5*time.Second, "lb1", demote())
	p.at(8*time.Second, "lb1", promote())
	p.run(12*time.Second, 3414062500)
	want := `
0s lb1 backup
0s lb2 backup
3.4140625s lb1 master
3.4140625s lb1 send 150
4.4140625s lb1 send 150
5s lb1 send 0
5s lb1 backup
5.609375s lb2 master
5.609375s lb2 send 100
5.609375s lb1 release
6.609375s lb2 send 100
7.609375s lb2 send 100
8.609375s lb2 send 100
9.609375s lb2 send 100
10.609375s lb2 send 100
11.4140625s lb1 master
11.4140625s lb1 send 150
11.4140625s lb2 backup
11.4140625s lb2 release`
	if diff := cmp.Diff(strings.TrimSpace(want), strings.Join(p.log, "\n")); diff != "" {
		t.Errorf("transcript (-want +got):\n%s", diff)
	}
}
