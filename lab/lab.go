// Package lab builds throw-away network topologies for integration tests: one
// "switch" (a Linux bridge in a network namespace of its own) and hosts
// (namespaces joined to the bridge by a veth pair), with faults to inject
// (pulled cable, packet loss, dropped IP protocols).
//
// It drives iproute2 (`ip`, `bridge`), `tc` and `nft`, so tests need root
// (see RequireRoot) and Linux. Every namespace name starts with
// "lbdt<pid>x<n>", nothing is created in the root namespace, and New removes
// what killed test binaries left behind.
//
// Lab, Host and Proc methods are safe for concurrent use, except New,
// AddHost and AddHostAddr, which call t.Fatal and so belong on the test
// goroutine.
package lab

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

const (
	prefix     = "lbdt"       // every namespace name starts with prefix+pid+"x"
	netnsDir   = "/run/netns" // where `ip netns add` bind-mounts namespaces
	bridgeName = "br0"
	cmdTimeout = 30 * time.Second
	pollEvery  = 10 * time.Millisecond
	linkWait   = 10 * time.Second // how long a link may take to come up
	procWait   = 10 * time.Second // how long a killed process may take to be reaped
)

// ErrTimeout is wrapped by errors of waits that ran out of time.
var ErrTimeout = errors.New("lab: timeout")

var (
	labSeq     atomic.Int64
	leftoverMu sync.Mutex // serialises removeLeftovers within this process
)

// Lab is one isolated switch and the hosts plugged into it.
type Lab struct {
	// ID is unique per lab, like "lbdt4242x1". It names the switch
	// namespace and prefixes every host namespace (ID + "-" + host name).
	ID string
	// Switch is the namespace holding the bridge (equal to ID).
	Switch string
	// Bridge is the bridge device inside Switch.
	Bridge string

	t testing.TB

	mu     sync.Mutex // guards all following fields
	hosts  map[string]*Host
	used   map[int]bool // host numbers N in use
	procs  []*Proc
	closed bool // set by close; no more processes start
}

// RequireRoot skips the test when not running as root, or fails it when
// the environment has CI=true, so that CI cannot silently skip lab tests.
func RequireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		skipOrFail(t, "lab: test needs root (network namespaces)")
	}
}

// skipOrFail skips on a developer machine and fails under CI=true.
func skipOrFail(t testing.TB, msg string) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatal(msg + " (CI=true, not skipping)")
	}
	t.Skip(msg)
}

// New creates a lab for a test: a namespace holding a bridge with
// multicast snooping and STP off. It first removes namespaces left by dead
// test processes and registers a cleanup that kills every process of the
// lab and deletes its namespaces (and with them every veth), also when the
// test fails or panics. Failures end the test.
//
// Equivalent to: `ip netns add ID; ip -n ID link add br0 type bridge`.
func New(t testing.TB) *Lab {
	t.Helper()
	requirePlatform(t)
	RequireRoot(t)
	l, err := open(t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	l.t = t
	t.Cleanup(func() {
		if err := l.Close(); err != nil {
			t.Error(err)
		}
	})
	return l
}

// Open creates a lab outside a test, for programs such as `lbdlab demo`:
// as New, but the caller must call Close, which reports what it could not
// clean up.
func Open() (*Lab, error) {
	if os.Geteuid() != 0 {
		return nil, errors.New("lab: needs root (network namespaces)")
	}
	return open(func(string, ...any) {})
}

func open(logf func(string, ...any)) (*Lab, error) {
	removeLeftovers(logf)
	id := fmt.Sprintf("%s%dx%d", prefix, os.Getpid(), labSeq.Add(1))
	l := &Lab{
		ID:     id,
		Switch: id,
		Bridge: bridgeName,
		hosts:  map[string]*Host{},
		used:   map[int]bool{},
	}
	if err := l.setupSwitch(); err != nil {
		l.Close()
		return nil, err
	}
	return l, nil
}

func (l *Lab) setupSwitch() error {
	if _, err := run("ip", "netns", "add", l.Switch); err != nil {
		return err
	}
	// The bridge forwards frames only; without IPv6 it sends no RS or MLD.
	for _, key := range []string{"net.ipv6.conf.all.disable_ipv6", "net.ipv6.conf.default.disable_ipv6"} {
		if err := setSysctl(l.Switch, key, "1"); err != nil {
			return err
		}
	}
	if _, err := run("ip", "-n", l.Switch, "link", "add", l.Bridge, "type", "bridge",
		"mcast_snooping", "0", "stp_state", "0"); err != nil {
		return err
	}
	_, err := run("ip", "-n", l.Switch, "link", "set", l.Bridge, "up")
	return err
}

// Close kills the lab's processes and deletes its namespaces. It is safe
// to call more than once.
func (l *Lab) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	procs := l.procs
	l.closed = true
	l.mu.Unlock()
	var errs []error
	for _, p := range procs {
		if err := p.Kill(); err != nil {
			errs = append(errs, fmt.Errorf("lab: cleanup: %w", err))
		}
	}
	names, err := labNetns(func(name string) bool { return name == l.ID || strings.HasPrefix(name, l.ID+"-") })
	if err != nil {
		errs = append(errs, fmt.Errorf("lab: cleanup: %w", err))
	}
	for _, ns := range names {
		if err := killNetnsPids(ns); err != nil {
			errs = append(errs, fmt.Errorf("lab: cleanup: %w", err))
		}
	}
	for _, p := range procs {
		if err := p.Wait(procWait); errors.Is(err, ErrTimeout) {
			errs = append(errs, fmt.Errorf("lab: cleanup: %w", err))
		}
	}
	for _, ns := range names {
		if _, err := run("ip", "netns", "del", ns); err != nil {
			errs = append(errs, fmt.Errorf("lab: cleanup: %w", err))
		}
	}
	return errors.Join(errs...)
}

// removeLeftovers deletes namespaces named by this package for a process
// that no longer exists, after killing whatever still runs inside them.
func removeLeftovers(logf func(string, ...any)) {
	leftoverMu.Lock()
	defer leftoverMu.Unlock()
	names, err := labNetns(func(name string) bool {
		pid, ok := ownerPID(name)
		return ok && pid != os.Getpid() && !processAlive(pid)
	})
	if err != nil {
		logf("lab: removing leftovers: %v", err)
		return
	}
	for _, ns := range names {
		if err := killNetnsPids(ns); err != nil {
			logf("lab: removing leftover: %v", err)
		}
		if _, err := run("ip", "netns", "del", ns); err != nil {
			logf("lab: removing leftover: %v", err)
		}
	}
}

// ownerPID returns the PID encoded in a namespace name "lbdt<pid>x<n>..."
// (the switch) or "lbdt<pid>x<n>-<host>".
func ownerPID(name string) (int, bool) {
	rest, ok := strings.CutPrefix(name, prefix)
	if !ok {
		return 0, false
	}
	pidText, rest, ok := strings.Cut(rest, "x")
	if !ok {
		return 0, false
	}
	seq, _, _ := strings.Cut(rest, "-")
	pid, err := strconv.Atoi(pidText)
	if err != nil || pid <= 0 || strconv.Itoa(pid) != pidText || !isDigits(seq) {
		return 0, false // not written by New (sign, leading zero, no number)
	}
	return pid, true
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// labNetns lists the named namespaces (like `ip netns list`) that keep
// returns true for; host namespaces come before switch namespaces.
func labNetns(keep func(string) bool) ([]string, error) {
	entries, err := os.ReadDir(netnsDir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("lab: listing namespaces: %w", err)
	}
	var hosts, switches []string
	for _, e := range entries {
		name := e.Name()
		switch {
		case !strings.HasPrefix(name, prefix) || !keep(name):
		case strings.Contains(name, "-"):
			hosts = append(hosts, name)
		default:
			switches = append(switches, name)
		}
	}
	return append(hosts, switches...), nil
}

// killNetnsPids sends SIGKILL to every process in namespace ns.
//
// Equivalent to: `ip netns pids NS | xargs kill -9`.
func killNetnsPids(ns string) error {
	out, err := run("ip", "netns", "pids", ns)
	if err != nil {
		if _, serr := os.Stat(filepath.Join(netnsDir, ns)); errors.Is(serr, os.ErrNotExist) {
			return nil // removed meanwhile by someone else
		}
		return err
	}
	for _, f := range strings.Fields(out) {
		pid, err := strconv.Atoi(f)
		if err != nil || pid <= 0 {
			continue
		}
		if pid == os.Getpid() {
			continue
		}
		if err := killPID(pid); err != nil {
			return fmt.Errorf("lab: killing pid %d in %s: %w", pid, ns, err)
		}
	}
	return nil
}

// Eventually polls cond every few milliseconds until it returns true and
// fails the test if that does not happen within timeout; the failure shows
// the reason cond gave last.
func Eventually(t testing.TB, timeout time.Duration, cond func() (ok bool, why string)) {
	t.Helper()
	if err := poll(timeout, cond); err != nil {
		t.Fatal(err)
	}
}

// poll calls cond until it returns true or timeout passes.
func poll(timeout time.Duration, cond func() (bool, string)) error {
	deadline := time.Now().Add(timeout)
	for {
		ok, why := cond()
		if ok {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%w: condition not met after %v: %s", ErrTimeout, timeout, why)
		}
		time.Sleep(pollEvery)
	}
}

// run executes a command (ip, bridge, tc, nft) in the root namespace and
// returns its combined output; the error quotes the command and output.
func run(args ...string) (string, error) { return runStdin("", args...) }

func runStdin(stdin string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, args[0], args[1:]...)
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("lab: %s: %w: %s", strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return string(out), nil
}

// setSysctl writes a sysctl inside namespace ns, like
// `ip netns exec NS sysctl -w KEY=VALUE`.
func setSysctl(ns, key, value string) error {
	path := "/proc/sys/" + strings.ReplaceAll(key, ".", "/")
	err := doInNetns(ns, func() error { return os.WriteFile(path, []byte(value), 0o644) })
	if err != nil {
		return fmt.Errorf("lab: sysctl %s=%s in %s: %w", key, value, ns, err)
	}
	return nil
}
