//go:build linux

package proxy

import (
	"errors"
	"syscall"

	"golang.org/x/sys/unix"
)

// readWaiter blocks until a socket has data or an EOF to read, or its read
// deadline passes, without reading: it peeks one byte (MSG_PEEK), so the
// connection holds no buffer while it waits. One per copy direction, built
// once, so waiting allocates nothing.
type readWaiter struct {
	rc   syscall.RawConn
	b    [1]byte
	err  error
	peek func(fd uintptr) bool
}

func newReadWaiter(rc syscall.RawConn) *readWaiter {
	w := &readWaiter{rc: rc}
	w.peek = func(fd uintptr) bool {
		_, _, e := unix.Recvfrom(int(fd), w.b[:], unix.MSG_PEEK|unix.MSG_DONTWAIT)
		if errors.Is(e, unix.EAGAIN) {
			return false
		}
		if e != nil && !errors.Is(e, unix.EINTR) {
			w.err = e
		}
		return true
	}
	return w
}

func (w *readWaiter) wait() error {
	w.err = nil
	if err := w.rc.Read(w.peek); err != nil {
		return err
	}
	return w.err
}
