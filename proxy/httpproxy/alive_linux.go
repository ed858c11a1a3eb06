//go:build linux

package httpproxy

import (
	"net"

	"golang.org/x/sys/unix"
)

// alive reports whether an idle keep-alive connection still looks usable:
// the backend has neither closed it nor sent anything unasked. It peeks
// without blocking (recv(2) with MSG_PEEK|MSG_DONTWAIT), one system call,
// paid only before requests that could not be replayed if it failed.
func alive(c *net.TCPConn) bool {
	rc, err := c.SyscallConn()
	if err != nil {
		return false
	}
	ok := false
	var b [1]byte
	err = rc.Read(func(fd uintptr) bool {
		_, _, err := unix.Recvfrom(int(fd), b[:], unix.MSG_PEEK|unix.MSG_DONTWAIT)
		ok = err == unix.EAGAIN || err == unix.EWOULDBLOCK
		return true
	})
	return err == nil && ok
}
