//go:build !linux

package httpproxy

import "net"

// rawIO falls back to plain writes and reads.
type rawIO struct {
	c     *net.TCPConn
	after func() bool
}

func (r *rawIO) init(c *net.TCPConn) error { r.c = c; return nil }

func (r *rawIO) writeRead(out, in []byte) (nw, nr int, err error) {
	if nw, err = r.c.Write(out); err != nil {
		return nw, 0, err
	}
	if r.after != nil && !r.after() {
		return nw, 0, errClosing
	}
	nr, err = r.c.Read(in)
	return nw, nr, err
}
