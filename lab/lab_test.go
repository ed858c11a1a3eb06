package lab

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

const (
	long  = 10 * time.Second       // for things that must happen
	short = 500 * time.Millisecond // for things that must not happen (a deterministic drop)
)

// newPair returns a lab with hosts a (198.18.0.11) and b (198.18.0.12).
func newPair(t *testing.T) (*Lab, *Host, *Host) {
	t.Helper()
	l := New(t)
	return l, l.AddHost("a"), l.AddHost("b")
}

// family picks a host's IPv4 or IPv6 address.
type family struct {
	name string
	addr func(*Host) netip.Addr
}

var families = []family{
	{"v4", func(h *Host) netip.Addr { return h.IPv4 }},
	{"v6", func(h *Host) netip.Addr { return h.IPv6 }},
}

func TestHostsPingEachOther(t *testing.T) {
	_, a, b := newPair(t)
	for _, f := range families {
		t.Run(f.name, func(t *testing.T) {
			for _, p := range [][2]*Host{{a, b}, {b, a}} {
				from, to := p[0], p[1]
				if err := from.Ping(f.addr(to), long); err != nil {
					t.Fatal(err)
				}
				mac, err := from.Neighbor(f.addr(to))
				if err != nil {
					t.Fatal(err)
				}
				if diff := cmp.Diff(to.MAC.String(), mac.String()); diff != "" {
					t.Errorf("%s's neighbor entry for %s (-want +got):\n%s", from.Name, f.addr(to), diff)
				}
			}
		})
	}
}

func TestHostAddresses(t *testing.T) {
	l, a, b := newPair(t)
	c := l.AddHostAddr("client", 100)
	tests := []struct {
		h                               *Host
		netns, v4, v6, prefix4, prefix6 string
	}{
		{a, l.ID + "-a", "198.18.0.11", "2001:db8::11", "198.18.0.11/24", "2001:db8::11/64"},
		{b, l.ID + "-b", "198.18.0.12", "2001:db8::12", "198.18.0.12/24", "2001:db8::12/64"},
		{c, l.ID + "-client", "198.18.0.100", "2001:db8::100", "198.18.0.100/24", "2001:db8::100/64"},
	}
	for _, tt := range tests {
		t.Run(tt.h.Name, func(t *testing.T) {
			got := []string{tt.h.Netns, tt.h.IPv4.String(), tt.h.IPv6.String(), tt.h.Prefix4.String(), tt.h.Prefix6.String()}
			want := []string{tt.netns, tt.v4, tt.v6, tt.prefix4, tt.prefix6}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("netns, addresses (-want +got):\n%s", diff)
			}
			addrs, err := tt.h.Addrs()
			if err != nil {
				t.Fatal(err)
			}
			var global []string
			for _, p := range addrs {
				if !p.Addr().IsLinkLocalUnicast() {
					global = append(global, p.String())
				}
			}
			if diff := cmp.Diff([]string{tt.prefix4, tt.prefix6}, global); diff != "" {
				t.Errorf("Addrs() without link-local (-want +got):\n%s", diff)
			}
			// A command in the namespace sees the same eth0.
			out, err := tt.h.Run(context.Background(), "ip", "-o", "link", "show", "dev", "eth0")
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(out, tt.h.MAC.String()) {
				t.Errorf("ip link in %s = %q, want MAC %s", tt.h.Name, out, tt.h.MAC)
			}
			if len(tt.h.Port) > 15 {
				t.Errorf("port name %q longer than 15", tt.h.Port)
			}
		})
	}
}

func TestProcessKilledAtCleanup(t *testing.T) {
	RequireRoot(t)
	var pids []int
	t.Run("lab", func(t *testing.T) {
		l := New(t)
		p, err := l.AddHost("a").Start("sh", "-c", "sleep 600 & echo child=$!; wait")
		if err != nil {
			t.Fatal(err)
		}
		if err := p.WaitOutput("child=", long); err != nil {
			t.Fatal(err)
		}
		child, err := strconv.Atoi(strings.TrimSpace(strings.TrimPrefix(p.Output(), "child=")))
		if err != nil {
			t.Fatalf("output %q: %v", p.Output(), err)
		}
		pids = []int{p.Pid(), child}
		for _, pid := range pids {
			if ok, why := gone(pid); ok {
				t.Fatalf("pid %d not running before cleanup: %s", pid, why)
			}
		}
	})
	for _, pid := range pids {
		Eventually(t, long, func() (bool, string) { return gone(pid) })
	}
}

// gone reports whether pid has exited; a zombie waiting for its reaper
// counts as exited.
func gone(pid int) (bool, string) {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if errors.Is(err, os.ErrNotExist) {
		return true, ""
	}
	// "pid (comm) S ...": the state follows the last ')'.
	i := bytes.LastIndexByte(stat, ')')
	if err != nil || i < 0 || i+2 >= len(stat) {
		return false, fmt.Sprintf("pid %d: stat %q: %v", pid, stat, err)
	}
	state := stat[i+2]
	return state == 'Z', fmt.Sprintf("pid %d in state %c", pid, state)
}

func TestProcSignalWaitOutput(t *testing.T) {
	h := New(t).AddHost("a")
	p, err := h.Start("sh", "-c", "trap 'echo got-term; exit 3' TERM; echo ready; while :; do sleep 0.05; done")
	if err != nil {
		t.Fatal(err)
	}
	if err := p.WaitOutput("ready", long); err != nil {
		t.Fatal(err)
	}
	if err := p.Wait(10 * time.Millisecond); !errors.Is(err, ErrTimeout) {
		t.Errorf("Wait on a running process = %v, want ErrTimeout", err)
	}
	if err := p.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := p.WaitOutput("got-term", long); err != nil {
		t.Fatal(err)
	}
	var exit *exec.ExitError
	if err := p.Wait(long); !errors.As(err, &exit) || exit.ExitCode() != 3 {
		t.Errorf("Wait = %v, want exit status 3", err)
	}
	err = p.WaitOutput("never printed", long)
	if err == nil || errors.Is(err, ErrTimeout) {
		t.Errorf("WaitOutput after exit = %v, want an exited error at once", err)
	}
}

func TestLinkDownUp(t *testing.T) {
	_, a, b := newPair(t)
	if err := a.Ping(b.IPv4, long); err != nil {
		t.Fatal(err)
	}
	if err := a.LinkDown(); err != nil {
		t.Fatal(err)
	}
	for _, p := range [][2]*Host{{a, b}, {b, a}} {
		if err := p[0].Ping(p[1].IPv4, short); !errors.Is(err, ErrTimeout) {
			t.Errorf("with a's cable pulled, %s pinging %s = %v, want ErrTimeout", p[0].Name, p[1].Name, err)
		}
	}
	if err := a.LinkUp(); err != nil {
		t.Fatal(err)
	}
	for _, p := range [][2]*Host{{a, b}, {b, a}} {
		if err := p[0].Ping(p[1].IPv4, long); err != nil {
			t.Errorf("after LinkUp: %v", err)
		}
	}
}

func TestSetLoss(t *testing.T) {
	_, a, b := newPair(t)
	for _, f := range families {
		t.Run(f.name, func(t *testing.T) {
			if err := a.SetLoss(100); err != nil {
				t.Fatal(err)
			}
			if err := a.Ping(f.addr(b), short); !errors.Is(err, ErrTimeout) {
				t.Errorf("with 100%% loss, ping = %v, want ErrTimeout", err)
			}
			if err := a.ClearLoss(); err != nil {
				t.Fatal(err)
			}
			if err := a.Ping(f.addr(b), long); err != nil {
				t.Errorf("after ClearLoss: %v", err)
			}
		})
	}
}

const protoVRRP = 112

func TestDropProto(t *testing.T) {
	_, a, b := newPair(t)
	for _, f := range []struct {
		family
		network, any string
	}{
		{families[0], "ip4:112", "0.0.0.0"},
		{families[1], "ip6:112", "::"},
	} {
		tx, err := a.ListenPacket(f.network, f.any)
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Close()
		rx, err := b.ListenPacket(f.network, f.any)
		if err != nil {
			t.Fatal(err)
		}
		defer rx.Close()
		to := &net.IPAddr{IP: f.addr(b).AsSlice()}
		for _, side := range []*Host{b, a} { // drop on receipt, then on sending
			t.Run(f.name+"/drop-on-"+side.Name, func(t *testing.T) {
				Eventually(t, long, func() (bool, string) { return deliver(tx, rx, to, short) })
				if err := side.DropProto(protoVRRP); err != nil {
					t.Fatal(err)
				}
				if ok, _ := deliver(tx, rx, to, short); ok {
					t.Errorf("protocol %d delivered although %s drops it", protoVRRP, side.Name)
				}
				if err := a.Ping(f.addr(b), long); err != nil {
					t.Errorf("ICMP while dropping %d: %v", protoVRRP, err)
				}
				if err := side.UndropProto(protoVRRP); err != nil {
					t.Fatal(err)
				}
				Eventually(t, long, func() (bool, string) { return deliver(tx, rx, to, short) })
			})
		}
	}
}

var token int

// deliver sends a fresh token over tx and reports whether rx reads it
// within wait.
func deliver(tx, rx net.PacketConn, to net.Addr, wait time.Duration) (bool, string) {
	token++
	msg := []byte(fmt.Sprintf("lab token %d", token))
	if _, err := tx.WriteTo(msg, to); err != nil {
		return false, fmt.Sprintf("send: %v", err)
	}
	if err := rx.SetReadDeadline(time.Now().Add(wait)); err != nil {
		return false, err.Error()
	}
	buf := make([]byte, 1500)
	for {
		n, _, err := rx.ReadFrom(buf)
		if err != nil {
			return false, fmt.Sprintf("receive: %v", err)
		}
		if bytes.Equal(buf[:n], msg) {
			return true, ""
		}
	}
}

func TestDoListenDial(t *testing.T) {
	_, a, b := newPair(t)

	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	before := currentNetns(t)
	var inside string
	if err := a.Do(func() error { inside = currentNetns(t); return nil }); err != nil {
		t.Fatal(err)
	}
	if inside == before {
		t.Errorf("inside Do the thread is still in %s", before)
	}
	if after := currentNetns(t); after != before {
		t.Errorf("after Do the thread is in %s, want %s", after, before)
	}

	for _, f := range families {
		t.Run(f.name, func(t *testing.T) {
			// b's address exists only in b's namespace, so Listen proves where it ran.
			ln, err := b.Listen("tcp", netip.AddrPortFrom(f.addr(b), 0).String())
			if err != nil {
				t.Fatal(err)
			}
			var wg sync.WaitGroup
			defer wg.Wait()
			defer ln.Close()
			wg.Go(func() { // echo server, ends when ln closes
				for {
					c, err := ln.Accept()
					if err != nil {
						return
					}
					io.Copy(c, c)
					c.Close()
				}
			})
			c, err := a.Dial("tcp", ln.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if err := c.SetDeadline(time.Now().Add(long)); err != nil {
				t.Fatal(err)
			}
			fmt.Fprintln(c, "hello from a")
			got, err := bufio.NewReader(c).ReadString('\n')
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff("hello from a\n", got); diff != "" {
				t.Errorf("echo (-want +got):\n%s", diff)
			}
		})
	}
}

func currentNetns(t *testing.T) string {
	ns, err := os.Readlink("/proc/thread-self/ns/net")
	if err != nil {
		t.Fatal(err)
	}
	return ns
}

func TestTeardownRemovesNamespaces(t *testing.T) {
	RequireRoot(t)
	var id string
	t.Run("lab", func(t *testing.T) {
		l := New(t)
		l.AddHost("a")
		l.AddHost("b")
		id = l.ID
		if got := netnsOf(t, id); len(got) != 3 {
			t.Fatalf("namespaces of %s while running = %v, want 3", id, got)
		}
	})
	if got := netnsOf(t, id); len(got) != 0 {
		t.Errorf("namespaces of %s after cleanup = %v, want none", id, got)
	}
}

// netnsOf lists, from `ip netns list`, the namespaces of lab id.
func netnsOf(t *testing.T, id string) []string {
	t.Helper()
	out, err := run("ip", "netns", "list")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, line := range strings.Split(out, "\n") {
		name, _, _ := strings.Cut(line, " ")
		if name == id || strings.HasPrefix(name, id+"-") {
			names = append(names, name)
		}
	}
	return names
}

func TestNewRemovesLeftovers(t *testing.T) {
	RequireRoot(t)
	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Fatal(err)
	}
	deadID := fmt.Sprintf("%s%dx1", prefix, dead.ProcessState.Pid())
	leftovers := []string{deadID, deadID + "-a"}
	alive := fmt.Sprintf("%s%dx1-keep", prefix, os.Getppid()) // go test lives on
	for _, ns := range append(leftovers, alive) {
		run("ip", "netns", "del", ns) // in case an earlier run was killed
		if _, err := run("ip", "netns", "add", ns); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { run("ip", "netns", "del", ns) })
	}
	// A process left running inside a leftover namespace.
	sleeper := exec.Command("ip", "netns", "exec", deadID+"-a", "sleep", "600")
	if err := sleeper.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { sleeper.Wait(); close(exited) }() // ends when the sleeper is killed
	t.Cleanup(func() { sleeper.Process.Kill(); <-exited })
	// Another test binary running lab.New at the same time (go test runs
	// packages in parallel) may remove these leftovers first: that is the
	// behaviour under test too, so a vanished namespace also ends the wait.
	Eventually(t, long, func() (bool, string) {
		if _, err := os.Stat(netnsDir + "/" + deadID + "-a"); errors.Is(err, os.ErrNotExist) {
			return true, ""
		}
		out, err := run("ip", "netns", "pids", deadID+"-a")
		return err == nil && strings.Contains(out, strconv.Itoa(sleeper.Process.Pid)), fmt.Sprintf("ip netns pids: %q %v", out, err)
	})

	New(t)

	for _, ns := range leftovers {
		if _, err := os.Stat(netnsDir + "/" + ns); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("leftover %s still exists (stat: %v)", ns, err)
		}
	}
	if _, err := os.Stat(netnsDir + "/" + alive); err != nil {
		t.Errorf("namespace %s of a live PID was removed: %v", alive, err)
	}
	select {
	case <-exited:
	case <-time.After(long):
		t.Errorf("process in leftover namespace still running after %v", long)
	}
}

// Tests below need no root.

func TestReserve(t *testing.T) {
	l := &Lab{ID: "lbdt1x1", hosts: map[string]*Host{}, used: map[int]bool{}}
	for _, name := range []string{"a", "b"} {
		if _, err := l.reserve(name, 0); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := l.reserve("vip", 13); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		n       int
		wantErr bool
		want    string // IPv4, port
	}{
		{"c", 0, false, "198.18.0.14 p14-c"},
		{"a-very-long-host-name", 200, false, "198.18.0.200 p200-a-very-lon"},
		{"a", 0, true, ""},   // duplicate
		{"d", 12, true, ""},  // number used
		{"e", 255, true, ""}, // out of range
		{"f", -1, true, ""},  // out of range
		{"", 0, true, ""},    // empty
		{"x/y", 0, true, ""}, // not a file name
		{"-x", 0, true, ""},  // looks like an option
		{strings.Repeat("h", 33), 0, true, ""},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s/%d", tt.name, tt.n), func(t *testing.T) {
			h, err := l.reserve(tt.name, tt.n)
			if (err != nil) != tt.wantErr {
				t.Fatalf("reserve(%q, %d) error = %v, want error %v", tt.name, tt.n, err, tt.wantErr)
			}
			if err != nil {
				return
			}
			if diff := cmp.Diff(tt.want, h.IPv4.String()+" "+h.Port); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestFaultArgs(t *testing.T) {
	h := &Host{Name: "a", dropped: map[int]bool{}}
	tests := []struct {
		name string
		err  error
	}{
		{"loss -1", h.SetLoss(-1)},
		{"loss 100.5", h.SetLoss(100.5)},
		{"loss NaN", h.SetLoss(math.NaN())},
		{"drop -1", h.DropProto(-1)},
		{"drop 256", h.UndropProto(256)},
	}
	for _, tt := range tests {
		if tt.err == nil {
			t.Errorf("%s: no error", tt.name)
		}
	}
	if err := h.UndropProto(protoVRRP); err != nil {
		t.Errorf("UndropProto of a protocol not dropped = %v, want nil", err)
	}
	if err := h.ClearLoss(); err != nil {
		t.Errorf("ClearLoss without loss = %v, want nil", err)
	}
}

func TestNftScript(t *testing.T) {
	want := `table inet lbdt {}
delete table inet lbdt
table inet lbdt {
	chain input {
		type filter hook input priority filter; policy accept;
		meta l4proto { 6, 112 } drop
	}
	chain output {
		type filter hook output priority filter; policy accept;
		meta l4proto { 6, 112 } drop
	}
}
`
	if diff := cmp.Diff(want, nftScript([]int{6, 112})); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if diff := cmp.Diff("table inet lbdt {}\ndelete table inet lbdt\n", nftScript(nil)); diff != "" {
		t.Errorf("no protocols (-want +got):\n%s", diff)
	}
	for _, tt := range []struct {
		percent float64
		match   string
	}{{0, "numgen random mod 10000 < 0 drop"}, {25.5, "numgen random mod 10000 < 2550 drop"}, {100, "drop"}} {
		want := `table netdev lbdt_loss {}
delete table netdev lbdt_loss
table netdev lbdt_loss {
	chain egress {
		type filter hook egress device "eth0" priority filter; policy accept;
		` + tt.match + `
	}
}
`
		if diff := cmp.Diff(want, nftLossScript("eth0", tt.percent)); diff != "" {
			t.Errorf("loss %v%% (-want +got):\n%s", tt.percent, diff)
		}
	}
}

func TestLiteralOnly(t *testing.T) {
	tests := []struct {
		network, addr string
		ok            bool
	}{
		{"tcp", "198.18.0.11:80", true},
		{"tcp", ":0", true},
		{"tcp6", "[2001:db8::11]:80", true},
		{"tcp", "[fe80::1%eth0]:80", true},
		{"udp4", "0.0.0.0:53", true},
		{"ip4:112", "0.0.0.0", true},
		{"ip6:112", "", true},
		{"unix", "/tmp/x.sock", true},
		{"tcp", "localhost:80", false},
		{"tcp", "198.18.0.11", false},
		{"ip4:112", "example.com", false},
	}
	for _, tt := range tests {
		if err := literalOnly(tt.network, tt.addr); (err == nil) != tt.ok {
			t.Errorf("literalOnly(%q, %q) = %v, want ok %v", tt.network, tt.addr, err, tt.ok)
		}
	}
}

func TestPoll(t *testing.T) {
	calls := 0
	if err := poll(long, func() (bool, string) { calls++; return calls == 3, "not yet" }); err != nil || calls != 3 {
		t.Errorf("poll = %v after %d calls, want nil after 3", err, calls)
	}
	err := poll(20*time.Millisecond, func() (bool, string) { return false, "reason 42" })
	if !errors.Is(err, ErrTimeout) || !strings.Contains(err.Error(), "reason 42") {
		t.Errorf("poll = %v, want ErrTimeout showing the last reason", err)
	}
}

func TestOwnerPID(t *testing.T) {
	tests := []struct {
		name string
		pid  int
		ok   bool
	}{
		{"lbdt4242x1", 4242, true},
		{"lbdt4242x12-client", 4242, true},
		{"lbdt4242x", 0, false},
		{"lbdt4242", 0, false},
		{"lbdtx1", 0, false},
		{"lbdt+42x1", 0, false},
		{"lbdt42x1a", 0, false},
		{"lbdt0x1", 0, false},
		{"lbdt01x0", 0, false}, // found by FuzzParse
		{"other42x1", 0, false},
		{"lbdt99999999999999999999x1", 0, false},
	}
	for _, tt := range tests {
		pid, ok := ownerPID(tt.name)
		if pid != tt.pid || ok != tt.ok {
			t.Errorf("ownerPID(%q) = %d, %v, want %d, %v", tt.name, pid, ok, tt.pid, tt.ok)
		}
	}
}

const (
	linkJSON  = `[{"ifindex":2,"ifname":"eth0","flags":["UP"],"operstate":"UP","address":"ba:34:b9:1c:7a:09"}]`
	portJSON  = `[{"ifindex":3,"link":"br0","ifname":"p11-a","master":"br0","state":"forwarding"}]`
	addrJSON  = `[{"ifindex":2,"ifname":"eth0","addr_info":[{"family":"inet","local":"198.18.0.11","prefixlen":24},{"family":"inet6","local":"2001:db8::11","prefixlen":64},{"family":"inet6","local":"fe80::b834:b9ff:fe1c:7a09","prefixlen":64,"scope":"link"}]}]`
	neighJSON = `[{"dst":"198.18.0.12","dev":"eth0","state":["FAILED"]},{"dst":"198.18.0.100","dev":"eth0","lladdr":"02:00:00:00:00:01","state":["STALE"]},{"dst":"2001:db8::12","dev":"eth0","lladdr":"02:00:00:00:00:02","router":null,"state":["REACHABLE"]}]`
)

func TestParseLink(t *testing.T) {
	tests := []struct {
		in      string
		want    string // address operstate state
		wantErr bool
	}{
		{linkJSON, "ba:34:b9:1c:7a:09 UP ", false},
		{portJSON, "  forwarding", false},
		{"[]", "", true},
		{linkJSON[:20], "", true},
	}
	for _, tt := range tests {
		l, err := parseLink(tt.in)
		if (err != nil) != tt.wantErr {
			t.Errorf("parseLink(%.30q) error = %v, want error %v", tt.in, err, tt.wantErr)
			continue
		}
		if diff := cmp.Diff(tt.want, l.Address+" "+l.OperState+" "+l.State); err == nil && diff != "" {
			t.Errorf("parseLink(%.30q) (-want +got):\n%s", tt.in, diff)
		}
	}
}

func TestParseAddrs(t *testing.T) {
	tests := []struct {
		in      string
		want    []string
		wantErr bool
	}{
		{addrJSON, []string{"198.18.0.11/24", "2001:db8::11/64", "fe80::b834:b9ff:fe1c:7a09/64"}, false},
		{"[]", nil, false},
		{`[{"addr_info":[{"local":"198.18.0.11","prefixlen":33}]}]`, nil, true},
		{`[{"addr_info":[{"local":"nonsense","prefixlen":8}]}]`, nil, true},
		{"not json", nil, true},
	}
	for _, tt := range tests {
		got, err := parseAddrs(tt.in)
		if (err != nil) != tt.wantErr {
			t.Errorf("parseAddrs(%.30q) error = %v, want error %v", tt.in, err, tt.wantErr)
			continue
		}
		var gotS []string
		for _, p := range got {
			gotS = append(gotS, p.String())
		}
		if diff := cmp.Diff(tt.want, gotS); diff != "" {
			t.Errorf("parseAddrs(%.30q) (-want +got):\n%s", tt.in, diff)
		}
	}
}

func TestParseNeigh(t *testing.T) {
	tests := []struct {
		ip      string
		want    string
		wantErr error
	}{
		{"198.18.0.100", "02:00:00:00:00:01", nil},
		{"2001:db8::12", "02:00:00:00:00:02", nil},
		{"198.18.0.12", "", ErrNoNeighbor}, // FAILED, no lladdr
		{"198.18.0.13", "", ErrNoNeighbor},
	}
	for _, tt := range tests {
		mac, err := parseNeigh(neighJSON, netip.MustParseAddr(tt.ip))
		if !errors.Is(err, tt.wantErr) {
			t.Errorf("parseNeigh(%s) error = %v, want %v", tt.ip, err, tt.wantErr)
		}
		if diff := cmp.Diff(tt.want, mac.String()); diff != "" {
			t.Errorf("parseNeigh(%s) (-want +got):\n%s", tt.ip, diff)
		}
	}
	if _, err := parseNeigh("{", netip.MustParseAddr("198.18.0.1")); err == nil || errors.Is(err, ErrNoNeighbor) {
		t.Errorf("parseNeigh of bad JSON = %v, want a parse error", err)
	}
}

// FuzzParse feeds the `ip -j` parsers and the leftover-name parser.
func FuzzParse(f *testing.F) {
	for _, s := range []string{linkJSON, portJSON, addrJSON, neighJSON, "lbdt4242x1-a"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		parseLink(in)
		if ps, err := parseAddrs(in); err == nil {
			for _, p := range ps {
				if !p.IsValid() {
					t.Errorf("parseAddrs returned invalid prefix %v", p)
				}
			}
		}
		for _, ip := range []string{"198.18.0.12", "2001:db8::12"} {
			mac, err := parseNeigh(in, netip.MustParseAddr(ip))
			if err == nil && len(mac) == 0 {
				t.Errorf("parseNeigh(%s) returned no MAC and no error", ip)
			}
		}
		if pid, ok := ownerPID(in); ok && !strings.HasPrefix(in, fmt.Sprintf("%s%dx", prefix, pid)) {
			t.Errorf("ownerPID(%q) = %d, which is not in the name", in, pid)
		}
	})
}

// TestCut: a cut host reaches nobody it was cut from, over IPv4 and IPv6,
// others still; removing the cut heals it.
func TestCut(t *testing.T) {
	l, a, b := newPair(t)
	c := l.AddHost("c")
	if err := a.Cut(b.IPv4, b.IPv6); err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		for _, p := range [][2]*Host{{a, b}, {b, a}} {
			if err := p[0].Ping(f.addr(p[1]), short); !errors.Is(err, ErrTimeout) {
				t.Errorf("%s: %s cut from %s: ping = %v, want ErrTimeout", f.name, a.Name, b.Name, err)
			}
		}
		if err := a.Ping(f.addr(c), long); err != nil {
			t.Errorf("%s: %s to %s, not cut: %v", f.name, a.Name, c.Name, err)
		}
	}
	if err := a.Cut(); err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if err := a.Ping(f.addr(b), long); err != nil {
			t.Errorf("%s: after the cut is removed: %v", f.name, err)
		}
	}
}

// TestAddAddrsAndRoute: a thousand addresses added in one batch all
// answer, through a route on another host.
func TestAddAddrsAndRoute(t *testing.T) {
	_, a, b := newPair(t)
	var ps []netip.Prefix
	for i := range 1000 {
		ps = append(ps, netip.PrefixFrom(netip.AddrFrom4([4]byte{198, 19, byte(i >> 8), byte(i)}), 32))
	}
	if err := a.AddAddrs(ps...); err != nil {
		t.Fatal(err)
	}
	addrs, err := a.Addrs()
	if err != nil {
		t.Fatal(err)
	}
	have := map[netip.Prefix]bool{}
	for _, p := range addrs {
		have[p] = true
	}
	for _, p := range ps {
		if !have[p] {
			t.Fatalf("%s missing on %s", p, a.Name)
		}
	}
	if err := b.AddRoute(netip.MustParsePrefix("198.19.0.0/16"), a.IPv4); err != nil {
		t.Fatal(err)
	}
	for _, p := range []netip.Prefix{ps[0], ps[999]} {
		if err := b.Ping(p.Addr(), long); err != nil {
			t.Errorf("ping %s through the route: %v", p.Addr(), err)
		}
	}
	// DialFrom connects from one of them; the other side sees it.
	ln, err := b.Listen("tcp", b.IPv4.String()+":7000")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c, err := a.DialFrom("tcp", ps[5].Addr(), b.IPv4.String()+":7000")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	sc, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer sc.Close()
	if got := sc.RemoteAddr().(*net.TCPAddr).AddrPort().Addr(); got != ps[5].Addr() {
		t.Errorf("accepted from %s, want %s", got, ps[5].Addr())
	}
}
