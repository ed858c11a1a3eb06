package main

import (
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"lbd/lab"
)

// writeConfigs rewrites both nodes' configurations with edit applied and
// starts them.
func (p *pair) startWith(t *testing.T, edit func(i int, cfg string) string) {
	for i, prio := range []int{150, 100} {
		p.dir[i] = t.TempDir()
		p.proc[i] = startLBD(t, p.lb[i], p.lbd, p.dir[i], edit(i, pairConfig(p.lb[i].Name, p.dir[i], prio, true)))
	}
}

func newBarePair(t *testing.T) *pair {
	lbdBin, lbctlBin := binaries(t)
	p := &pair{t: t, l: lab.New(t), lbd: lbdBin, lbctl: lbctlBin}
	p.lb[0] = p.l.AddHostAddr("lb1", 11)
	p.lb[1] = p.l.AddHostAddr("lb2", 12)
	p.client = p.l.AddHostAddr("client", 50)
	return p
}

// TestVRRPIPv6: VRRPv3 over IPv6 (ff02::12, link-local sources); the master
// holds the IPv6 VIP and the client's neighbour entry follows a failover
// (unsolicited neighbour advertisements).
func TestVRRPIPv6(t *testing.T) {
	p := newBarePair(t)
	p.startWith(t, func(i int, cfg string) string {
		return strings.Replace(cfg, `vips = ["198.18.0.100/24"]`, `vips = ["2001:db8::100/64"]`, 1)
	})
	vip6 := netip.MustParseAddr("2001:db8::100")
	holds := func(i int) bool {
		addrs, _ := p.lb[i].Addrs()
		for _, a := range addrs {
			if a.Addr() == vip6 {
				return true
			}
		}
		return false
	}
	expect := func(i int) {
		t.Helper()
		lab.Eventually(t, 15*time.Second, func() (bool, string) {
			if p.state(i) != "MASTER" || !holds(i) || holds(1-i) {
				return false, fmt.Sprintf("lb1 %s %v, lb2 %s %v", p.state(0), holds(0), p.state(1), holds(1))
			}
			if err := p.client.Ping(vip6, time.Second); err != nil {
				return false, "ping: " + err.Error()
			}
			mac, err := p.client.Neighbor(vip6)
			if err != nil || mac.String() != p.lb[i].MAC.String() {
				return false, fmt.Sprintf("client's neighbour entry for %v is %v (%v), want %v", vip6, mac, err, p.lb[i].MAC)
			}
			return true, ""
		})
	}
	expect(0)
	st, _ := p.status(1)
	if m := st.Instances[0].Master; !strings.HasPrefix(m, "fe80::") {
		t.Errorf("lb2 sees master %q, want lb1's link-local address", m)
	}
	p.lbctlRun(0, "demote")
	expect(1)
}

// TestVRRPTracksAndNotify: a failing script track lowers lb1's priority so
// lb2 preempts; a pool track whose backends are all down does the same; the
// notify script is called with (instance, state, priority) on every change.
func TestVRRPTracksAndNotify(t *testing.T) {
	p := newBarePair(t)
	scripts := t.TempDir()
	flag := filepath.Join(scripts, "healthy")
	os.WriteFile(flag, nil, 0o644)
	check := filepath.Join(scripts, "check.sh")
	os.WriteFile(check, []byte("#!/bin/sh\ntest -e "+flag+"\n"), 0o755)
	notify := filepath.Join(scripts, "notify.sh")
	notes := filepath.Join(scripts, "notes")
	os.WriteFile(notify, []byte("#!/bin/sh\necho \"$1 $2 $3\" >> "+notes+"\n"), 0o755)
	p.startWith(t, func(i int, cfg string) string {
		if i != 0 {
			return cfg
		}
		cfg = strings.Replace(cfg, `vips = ["198.18.0.100/24"]`, `vips = ["198.18.0.100/24"]
notify = "`+notify+`"
  [[vrrp.track]]
  script = "`+check+`"
  interval = "100ms"
  weight = 60
  [[vrrp.track]]
  pool = "app"
  weight = 60`, 1)
		return strings.Replace(cfg, `connect_timeout = "1s"`, `connect_timeout = "1s"
  [pool.health]
  type = "tcp"
  interval = "100ms"
  timeout = "100ms"
  fall = 1
  rise = 1`, 1)
	})
	prio := func() int {
		st, ok := p.status(0)
		if !ok {
			return -1
		}
		return st.Instances[0].EffectivePriority
	}
	expect := func(master int, lb1prio int, why string) {
		t.Helper()
		lab.Eventually(t, 15*time.Second, func() (bool, string) {
			ok := p.state(master) == "MASTER" && p.state(1-master) == "BACKUP" && prio() == lb1prio
			return ok, fmt.Sprintf("%s: lb1 %s (priority %d), lb2 %s", why, p.state(0), prio(), p.state(1))
		})
	}
	// Nothing answers on the pool's backend yet: the pool track fails, lb1
	// runs at 150 − 60 = 90 and lb2 (100) is master.
	expect(1, 90, "pool without a healthy backend")
	be := p.l.AddHostAddr("be1", 21)
	greeter(t, be, "198.18.0.21:8080")
	expect(0, 150, "backend up")
	// The script track fails: lb2 takes over; it recovers: lb1 preempts.
	os.Remove(flag)
	expect(1, 90, "script failing")
	os.WriteFile(flag, nil, 0o644)
	expect(0, 150, "script passing")

	lab.Eventually(t, 10*time.Second, func() (bool, string) {
		b, _ := os.ReadFile(notes)
		got := string(b)
		return strings.Contains(got, "web BACKUP ") && strings.Contains(got, "web MASTER 150"), "notify calls: " + got
	})
}

// TestProxyTrackMovesVIP: the master's proxy stops accepting (its process
// runs out of file descriptors, so accept(2) fails with EMFILE while
// clients keep arriving); the implicit proxy track puts its VRRP instance
// in FAULT and the backup, whose proxy serves, takes the VIP. Once the
// proxy accepts again, the master takes the VIP back (preempt).
func TestProxyTrackMovesVIP(t *testing.T) {
	p := newPair(t, true)
	p.expectMaster(0, 15*time.Second)
	pid := strconv.Itoa(p.proc[0].Pid())
	soft, err := exec.Command("prlimit", "--pid", pid, "--nofile", "--output=SOFT", "--noheadings").Output()
	if err != nil {
		t.Fatal(err)
	}
	// No new descriptor (a new one must be below the limit, and 0-2 are
	// taken): every accept fails with EMFILE, the sockets open already
	// keep working. Only the soft limit moves, so that it can be raised
	// back without privileges.
	if out, err := exec.Command("prlimit", "--pid", pid, "--nofile=3:").CombinedOutput(); err != nil {
		t.Fatalf("prlimit: %v\n%s", err, out)
	}
	restored := false
	restore := func() {
		if !restored {
			restored = true
			if out, err := exec.Command("prlimit", "--pid", pid, "--nofile="+strings.TrimSpace(string(soft))+":").CombinedOutput(); err != nil {
				t.Errorf("prlimit: %v\n%s", err, out)
			}
		}
	}
	defer restore()
	// Clients keep arriving, as they would at a VIP.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	defer func() { close(stop); wg.Wait() }()
	wg.Go(func() {
		for {
			select {
			case <-stop:
				return
			case <-time.After(50 * time.Millisecond):
			}
			p.ask()
		}
	})
	if err := p.proc[0].WaitOutput("the local proxy stopped accepting", 15*time.Second); err != nil {
		t.Fatalf("%v\nlb1 output:\n%s", err, p.proc[0].Output())
	}
	p.expectMaster(1, 15*time.Second)
	restore()
	if err := p.proc[0].WaitOutput("the local proxy accepts again", 15*time.Second); err != nil {
		t.Fatal(err)
	}
	p.expectMaster(0, 15*time.Second)
	if st, ok := p.status(0); !ok || len(st.Instances[0].FailingTracks) != 0 {
		t.Errorf("lb1 failing tracks after recovery: %+v", st.Instances)
	}
}
