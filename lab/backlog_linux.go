package lab

import (
	"net/netip"
	"testing"

	"golang.org/x/sys/unix"
)

// NeverAccepts returns the address of a loopback TCP socket that listens
// with a backlog of 0 and never accepts (listen(2) with backlog 0): once
// a connection fills its queue the kernel drops every further SYN, so a
// connect hangs until its timeout, as towards a host that is down. The
// socket closes when the test ends; it needs no namespace and no root.
func NeverAccepts(t testing.TB) string {
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
	return netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 0, 1}), uint16(sa.(*unix.SockaddrInet4).Port)).String()
}
