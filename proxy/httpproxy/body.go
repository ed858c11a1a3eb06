package httpproxy

import (
	"io"
	"time"
)

// reframeBuffered re-frames the chunked body bytes already buffered into
// dst, reading more from the client until at least the first chunk size
// line is in: a malformed first chunk is refused before any byte reaches
// a backend. Re-framing drops chunk extensions and trailers (RFC 9112
// §7.1.1, RFC 9110 §6.5.1 allow both), so the backend sees one plain
// framing whatever the client sent.
func (c *conn) reframeBuffered(dst []byte) ([]byte, error) {
	for {
		for c.in.len() > 0 && !c.ck.done() {
			p := c.in.data()
			n, ds, err := c.ck.next(p)
			if err != nil {
				return dst, err
			}
			if n > ds {
				dst = appendChunkHeader(dst, n-ds)
				dst = append(dst, p[ds:n]...)
				dst = append(dst, "\r\n"...)
				c.x.bodyIn += uint64(n - ds)
			}
			c.in.consume(n)
		}
		if c.ck.done() {
			return append(dst, "0\r\n\r\n"...), nil
		}
		if c.ck.sizes > 0 {
			return dst, nil // the copy goroutine streams the rest
		}
		if _, err := c.in.fill(c.nc); err != nil {
			return dst, err
		}
	}
}

// startCopy starts copying the rest of the request body to the backend
// while the response is awaited (so a backend may answer 100 Continue, or
// answer early).
func (c *conn) startCopy(bc *bconn) {
	x := &c.x
	x.copying, x.copyErr, x.copyAll, x.abort = true, nil, false, c.abortFn
	go c.copyBody(bc)
}

// abortCopy unblocks the copy goroutine, whichever side it waits on.
func (c *conn) abortCopy() {
	c.nc.SetReadDeadline(aLongTimeAgo)
	c.x.cut()
}

func (c *conn) copyBody(bc *bconn) {
	x := &c.x
	var err error
	if c.chunked {
		err = c.copyChunked(bc)
	} else {
		err = c.copyLength(bc)
	}
	x.copyErr, x.copyAll = err, err == nil
	if err != nil {
		bc.Close() // the backend must not wait for the rest
	}
	x.copyDone <- struct{}{}
}

// copyLength copies bodyLeft bytes, with splice(2) when both sides are
// plain TCP.
func (c *conn) copyLength(bc *bconn) error {
	x := &c.x
	idle := x.st.idle
	var bufp *[]byte
	defer putBuf(bufp)
	for c.bodyLeft > 0 {
		if idle > 0 {
			c.nc.SetReadDeadline(time.Now().Add(idle))
			bc.c.SetWriteDeadline(time.Now().Add(idle))
		}
		var n int64
		var err error
		if !c.secure {
			lr := io.LimitedReader{R: c.tcp, N: min(c.bodyLeft, writeRefresh)}
			n, err = bc.c.ReadFrom(&lr)
			if err == nil && lr.N > 0 {
				err = io.ErrUnexpectedEOF
			}
		} else {
			if bufp == nil {
				bufp = getLarge()
			}
			buf := (*bufp)[:min(int64(len(*bufp)), c.bodyLeft)]
			var m int
			m, err = c.nc.Read(buf)
			if m > 0 {
				m, err = bc.c.Write(buf[:m])
			}
			n = int64(m)
		}
		c.bodyLeft -= n
		x.sent += uint64(n)
		x.bodyIn += uint64(n)
		if err != nil {
			return err
		}
	}
	return nil
}

// copyChunked re-frames the rest of a chunked body as it arrives.
func (c *conn) copyChunked(bc *bconn) error {
	x := &c.x
	idle := x.st.idle
	bufp := getLarge()
	defer putBuf(bufp)
	out := (*bufp)[:0]
	write := func() error {
		if len(out) == 0 {
			return nil
		}
		if idle > 0 {
			bc.c.SetWriteDeadline(time.Now().Add(idle))
		}
		n, err := bc.c.Write(out)
		x.sent += uint64(n)
		out = out[:0]
		return err
	}
	for {
		for c.in.len() > 0 && !c.ck.done() {
			p := c.in.data()
			if room := cap(out) - len(out) - 32; len(p) > room {
				if err := write(); err != nil {
					return err
				}
				p = p[:min(len(p), cap(out)-32)]
			}
			n, ds, err := c.ck.next(p)
			if err != nil {
				return err
			}
			if n > ds {
				out = appendChunkHeader(out, n-ds)
				out = append(out, p[ds:n]...)
				out = append(out, "\r\n"...)
				x.bodyIn += uint64(n - ds)
			}
			c.in.consume(n)
		}
		if c.ck.done() {
			out = append(out, "0\r\n\r\n"...)
			return write()
		}
		if err := write(); err != nil {
			return err
		}
		if idle > 0 {
			c.nc.SetReadDeadline(time.Now().Add(idle))
		}
		if n, err := c.in.fill(c.nc); n == 0 && err != nil {
			return err
		}
	}
}

// Response body framings (RFC 9112 §6.3).
const (
	bodyNone    uint8 = iota
	bodyLength        // Content-Length
	bodyChunked       // chunked, passed through as received
	bodyDechunk       // chunked from the backend, data only to an HTTP/1.0 client
	bodyClose         // until the backend closes
)

// sink is where a response body goes: an HTTP/1.1 connection or an
// HTTP/2 stream.
type sink interface {
	emit(p []byte) error
	flush() error
}

// streamBody copies the response body from the backend to s, as mode
// frames it, n bytes for bodyLength. An error of s is errClientGone.
func (x *exchange) streamBody(s sink, mode uint8, n int64) error {
	if mode == bodyNone {
		return nil
	}
	bc := x.bc
	in := &bc.in
	var ck chunkParser
	for {
		if in.len() > 0 {
			switch mode {
			case bodyLength:
				k := int(min(int64(in.len()), n))
				if err := s.emit(in.data()[:k]); err != nil {
					return errClientGone
				}
				x.bodyOut += uint64(k)
				in.consume(k)
				n -= int64(k)
			case bodyChunked, bodyDechunk:
				for in.len() > 0 && !ck.done() {
					p := in.data()
					m, ds, err := ck.next(p)
					if err != nil {
						return errBadResponse
					}
					out := p[:m]
					if mode == bodyDechunk {
						out = p[ds:m]
					}
					if len(out) > 0 {
						if err := s.emit(out); err != nil {
							return errClientGone
						}
						if mode == bodyDechunk {
							x.bodyOut += uint64(len(out))
						} else {
							x.bodyOut += uint64(m - ds)
						}
					}
					in.consume(m)
				}
			case bodyClose:
				if err := s.emit(in.data()); err != nil {
					return errClientGone
				}
				x.bodyOut += uint64(in.len())
				in.consume(in.len())
			}
		}
		if (mode == bodyLength && n == 0) || ((mode == bodyChunked || mode == bodyDechunk) && ck.done()) {
			return nil
		}
		if err := s.flush(); err != nil {
			return errClientGone
		}
		if t := x.tgt.readTimeout; t > 0 {
			bc.c.SetReadDeadline(time.Now().Add(t))
		}
		m, err := in.fill(bc.c)
		x.recv += uint64(m)
		if m == 0 && err != nil {
			if mode == bodyClose && err == io.EOF {
				return nil
			}
			return errBackendBodyRead
		}
	}
}
