//go:build linux

package proxy

import (
	"errors"
	"syscall"

	"golang.org/x/sys/unix"
)

// waitReadable blocks until the socket has data or an EOF to read, or its
// read deadline passes, without reading: it peeks one byte (MSG_PEEK), so
// the connection holds no buffer while it waits.
func waitReadable(rc syscall.RawConn) error {
	var b [1]byte
	var perr error
	err := rc.Read(func(fd uintptr) bool {
		_, _, e := unix.Recvfrom(int(fd), b[:], unix.MSG_PEEK|unix.MSG_DONTWAIT)
		if errors.Is(e, unix.EAGAIN) {
			return false
		}
		if e != nil && !errors.Is(e, unix.EINTR) {
			perr = e
		}
		return true
	})
	if err != nil {
		return err
	}
	return perr
}
