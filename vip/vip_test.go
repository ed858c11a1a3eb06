package vip

import (
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// recorder is a Kernel that keeps addresses in memory and writes a
// transcript in `ip` command form.
type recorder struct {
	mu    sync.Mutex
	addrs map[string][]netip.Prefix
	log   []string
	// announced is signalled once per Announce call.
	announced chan struct{}
}

func newRecorder() *recorder {
	return &recorder{addrs: map[string][]netip.Prefix{}, announced: make(chan struct{}, 100)}
}

func (r *recorder) AddAddr(ifname string, p netip.Prefix, label string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	l := ""
	if label != "" {
		l = " label " + label
	}
	r.log = append(r.log, fmt.Sprintf("ip addr add %s dev %s%s", p, ifname, l))
	if !contains(r.addrs[ifname], p) {
		r.addrs[ifname] = append(r.addrs[ifname], p)
	}
	return nil
}

func (r *recorder) DelAddr(ifname string, p netip.Prefix) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.log = append(r.log, fmt.Sprintf("ip addr del %s dev %s", p, ifname))
	r.removeLocked(ifname, p)
	return nil
}

func (r *recorder) removeLocked(ifname string, p netip.Prefix) {
	list := r.addrs[ifname][:0]
	for _, q := range r.addrs[ifname] {
		if q != p {
			list = append(list, q)
		}
	}
	r.addrs[ifname] = list
}

func (r *recorder) Addrs(ifname string) ([]netip.Prefix, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]netip.Prefix(nil), r.addrs[ifname]...), nil
}

func (r *recorder) Announce(ifname string, addrs []netip.Addr) error {
	r.mu.Lock()
	var s []string
	for _, a := range addrs {
		s = append(s, a.String())
	}
	r.log = append(r.log, fmt.Sprintf("announce %s dev %s", strings.Join(s, " "), ifname))
	r.mu.Unlock()
	r.announced <- struct{}{}
	return nil
}

func (r *recorder) transcript() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.log...)
}

func (r *recorder) waitAnnounces(t *testing.T, n int) {
	t.Helper()
	for i := 0; i < n; i++ {
		select {
		case <-r.announced:
		case <-time.After(10 * time.Second):
			t.Fatalf("only %d of %d announcements arrived", i, n)
		}
	}
}

var (
	vip4 = netip.MustParsePrefix("198.18.0.100/24")
	vip6 = netip.MustParsePrefix("2001:db8::100/64")
)

func TestClaimRelease(t *testing.T) {
	r := newRecorder()
	o := New(Config{Interface: "eth0", VIPs: []netip.Prefix{vip4, vip6}, GARPRepeat: 3, GARPInterval: time.Millisecond}, r, nil)
	if err := o.Claim(); err != nil {
		t.Fatal(err)
	}
	r.waitAnnounces(t, 3)
	if !o.Claimed() {
		t.Error("Claimed() = false after Claim")
	}
	if err := o.Release(); err != nil {
		t.Fatal(err)
	}
	want := []string{
		"ip addr add 198.18.0.100/24 dev eth0 label eth0:vrrp",
		"ip addr add 2001:db8::100/64 dev eth0",
		"announce 198.18.0.100 2001:db8::100 dev eth0",
		"announce 198.18.0.100 2001:db8::100 dev eth0",
		"announce 198.18.0.100 2001:db8::100 dev eth0",
		"ip addr del 198.18.0.100/24 dev eth0",
		"ip addr del 2001:db8::100/64 dev eth0",
	}
	if diff := cmp.Diff(want, r.transcript()); diff != "" {
		t.Errorf("transcript (-want +got):\n%s", diff)
	}
	if got := o.Announced(); got != 3 {
		t.Errorf("Announced() = %d, want 3", got)
	}
}

func TestRefreshUntilRelease(t *testing.T) {
	r := newRecorder()
	o := New(Config{Interface: "eth0", VIPs: []netip.Prefix{vip4}, GARPRepeat: 1, GARPInterval: time.Millisecond, GARPRefresh: time.Millisecond}, r, nil)
	o.Claim()
	r.waitAnnounces(t, 5) // 1 burst + at least 4 refreshes
	o.Release()
	n := len(r.transcript())
	// After Release returns the announcer is stopped: nothing more is sent.
	select {
	case <-r.announced:
		// An announcement counted before Release may still be buffered; drain
		// it and check nothing was appended after Release's removal.
	default:
	}
	got := r.transcript()
	if len(got) != n || got[len(got)-1] != "ip addr del 198.18.0.100/24 dev eth0" {
		t.Errorf("activity after Release: %v", got[n-1:])
	}
}

func TestRemoveStale(t *testing.T) {
	r := newRecorder()
	other := netip.MustParsePrefix("198.18.0.11/24")
	r.addrs["eth0"] = []netip.Prefix{other, vip4}
	o := New(Config{Interface: "eth0", VIPs: []netip.Prefix{vip4, vip6}}, r, nil)
	stale, err := o.RemoveStale()
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]netip.Prefix{vip4}, stale, cmp.Comparer(func(a, b netip.Prefix) bool { return a == b })); diff != "" {
		t.Errorf("stale (-want +got):\n%s", diff)
	}
	got, _ := r.Addrs("eth0")
	if len(got) != 1 || got[0] != other {
		t.Errorf("addresses after RemoveStale = %v, want only %v", got, other)
	}
}

func TestVerifyRestoresRemovedVIP(t *testing.T) {
	r := newRecorder()
	o := New(Config{Interface: "eth0", VIPs: []netip.Prefix{vip4}, GARPRepeat: 1}, r, nil)
	if missing, _ := o.Verify(); missing != nil {
		t.Errorf("Verify before Claim restored %v", missing)
	}
	o.Claim()
	r.waitAnnounces(t, 1)
	if missing, _ := o.Verify(); len(missing) != 0 {
		t.Errorf("Verify with VIP present restored %v", missing)
	}
	// Someone runs `ip addr del 198.18.0.100/24 dev eth0`.
	r.mu.Lock()
	r.removeLocked("eth0", vip4)
	r.mu.Unlock()
	missing, err := o.Verify()
	if err != nil || len(missing) != 1 || missing[0] != vip4 {
		t.Fatalf("Verify = %v, %v; want [%v]", missing, err, vip4)
	}
	r.waitAnnounces(t, 1) // restored VIPs are announced again
	if got, _ := r.Addrs("eth0"); !contains(got, vip4) {
		t.Error("VIP not restored")
	}
	o.Close()
	if got, _ := r.Addrs("eth0"); contains(got, vip4) {
		t.Error("VIP still present after Close")
	}
}

func TestLabel(t *testing.T) {
	for in, want := range map[string]string{"eth0": "eth0:vrrp", "enp0s31f6": "enp0s31f6:vrrp", "enx0123456789ab": ""} {
		if got := Label(in); got != want {
			t.Errorf("Label(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestSecondBurstAfterLocktime(t *testing.T) {
	r := newRecorder()
	o := New(Config{Interface: "eth0", VIPs: []netip.Prefix{vip4}, GARPRepeat: 2, GARPInterval: time.Millisecond}, r, nil)
	start := time.Now()
	o.Claim()
	defer o.Close()
	r.waitAnnounces(t, 3) // the burst of 2, then one more past the locktime
	if took := time.Since(start); took < SecondBurst-10*time.Millisecond {
		t.Errorf("third announcement after %v, want it after about %v", took, SecondBurst)
	}
	if got := o.Announced(); got != 3 {
		t.Errorf("Announced() = %d, want 3", got)
	}
}
