package health

import (
	"context"
	"net"
	"strconv"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// fullListener returns the address of a loopback listener with a backlog
// of 0 that never accepts: after the first connection the kernel drops
// SYNs, so connects hang until their timeout.
func fullListener(t *testing.T) string {
	t.Helper()
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	if err := unix.Bind(fd, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := unix.Listen(fd, 0); err != nil {
		t.Fatal(err)
	}
	sa, err := unix.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(sa.(*unix.SockaddrInet4).Port))
}

func TestConnectProbeTimeoutAndCancel(t *testing.T) {
	addr := fullListener(t)
	timeout := 200 * time.Millisecond
	pr := &tcpProber{timeout: timeout}
	var got []string
	for range 4 { // the first connects fill the queue; then they hang
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		start := time.Now()
		r := pr.Probe(ctx, addr)
		cancel()
		got = append(got, r.Text)
		if r.Text == "timeout after 200ms" {
			if took := time.Since(start); took < timeout {
				t.Errorf("timed out after %v, before the %v timeout", took, timeout)
			}
			break
		}
	}
	if last := got[len(got)-1]; last != "timeout after 200ms" {
		t.Fatalf("probes of a listener that drops SYNs gave %q, want one \"timeout after 200ms\"", got)
	}

	// Close cancels the probe's context: it returns at once, not at the
	// timeout.
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(50*time.Millisecond, cancel)
	start := time.Now()
	pr = &tcpProber{timeout: time.Minute}
	if r := pr.Probe(ctx, addr); r.OK {
		t.Errorf("cancelled probe = %+v, want a failure", r)
	}
	if took := time.Since(start); took > 10*time.Second {
		t.Errorf("cancelled probe returned after %v, want soon after the cancel", took)
	}
}
