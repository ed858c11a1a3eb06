//go:build linux

package httpproxy

import (
	"errors"
	"io"
	"net"
	"syscall"

	"golang.org/x/sys/unix"
)

// rawIO sends a request and reads the first bytes of the answer on one
// connection with no wasted system call. Go's net.Conn.Read tries read(2)
// first and waits for the poller only when it fails with EAGAIN, which is
// what happens every time right after a request was sent: one read in two
// is wasted. rawIO registers for readiness before it writes, so the first
// read it makes finds data.
type rawIO struct {
	rc    syscall.RawConn
	fn    func(fd uintptr) bool // step, bound once so that a call allocates nothing
	out   []byte
	in    []byte
	nw    int
	nr    int
	err   error
	wrote bool
	// after, if set, is called once out is written; when it reports
	// false, writeRead returns errClosing instead of waiting.
	after func() bool
}

func (r *rawIO) init(c *net.TCPConn) error {
	rc, err := c.SyscallConn()
	if err != nil {
		return err
	}
	r.rc = rc
	r.fn = r.step
	return nil
}

// step is called by RawConn.Read after the poller's readiness is reset
// and then each time the socket is readable.
func (r *rawIO) step(fd uintptr) bool {
	if !r.wrote {
		r.wrote = true
		for r.nw < len(r.out) {
			n, err := unix.Write(int(fd), r.out[r.nw:])
			if err == unix.EINTR {
				continue
			}
			if err != nil {
				if err != unix.EAGAIN {
					r.err = err
				}
				return true // the caller writes the rest the usual way
			}
			r.nw += n
		}
		if r.after != nil && !r.after() {
			r.err = errClosing
			return true
		}
		return false // wait for the answer
	}
	for {
		n, err := unix.Read(int(fd), r.in)
		switch {
		case err == unix.EINTR:
			continue
		case err == unix.EAGAIN:
			return false
		case err != nil:
			r.err = err
		case n == 0:
			r.err = io.EOF
		default:
			r.nr = n
		}
		return true
	}
}

// writeRead writes out, then reads once into in. nw < len(out) with a nil
// error means the socket buffer filled up: the caller writes the rest and
// reads as usual.
func (r *rawIO) writeRead(out, in []byte) (nw, nr int, err error) {
	if r.rc == nil {
		return 0, 0, errors.New("httpproxy: raw I/O not initialised")
	}
	r.out, r.in, r.nw, r.nr, r.err, r.wrote = out, in, 0, 0, nil, false
	err = r.rc.Read(r.fn)
	if err == nil {
		err = r.err
	}
	nw, nr = r.nw, r.nr
	r.out, r.in, r.err = nil, nil, nil
	return nw, nr, err
}
