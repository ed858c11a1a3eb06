package httpproxy

import (
	"errors"
	"io"
	"net"
	"sync/atomic"
	"time"
)

// tunnel relays an upgraded connection (RFC 9110 §7.8, WebSocket RFC
// 6455) both ways until both sides have closed it. The backend stays
// counted active meanwhile, so least_conn sees the tunnel.
func (c *conn) tunnel(st *state) bool {
	x := &c.x
	r := &x.resp
	x.waitCopy(false)
	c.out = c.appendResponseHead(c.out[:0], st, r, bodyNone, true, "", false)
	x.recv += uint64(r.size)
	x.bc.in.consume(r.size)
	if x.bc.in.len() > 0 {
		c.out = append(c.out, x.bc.in.data()...)
		x.bc.in.consume(x.bc.in.len())
	}
	if c.flush() != nil {
		x.finish(false)
		return false
	}
	bc := x.bc
	if c.in.len() > 0 {
		n, err := bc.c.Write(c.in.data())
		x.sent += uint64(n)
		if err != nil {
			x.finish(false)
			return false
		}
		c.in.consume(c.in.len())
	}
	idle := st.idle
	// touch moves both deadlines idle ahead; traffic either way keeps the
	// tunnel open. It does so at most every idle/8, so that a chatty
	// tunnel does not reset timers on every message.
	var last atomic.Int64
	touch := func() {
		if idle <= 0 {
			return
		}
		now := time.Now()
		if p := last.Load(); now.UnixNano()-p < int64(idle/8) || !last.CompareAndSwap(p, now.UnixNano()) {
			return
		}
		dl := now.Add(idle)
		c.nc.SetDeadline(dl)
		bc.c.SetDeadline(dl)
	}
	touch()
	up := make(chan int64, 1)
	go func() {
		n, err := relay(bc.c, c.nc, touch)
		if err == nil {
			bc.c.CloseWrite()
		} else {
			c.nc.Close()
			bc.c.Close()
		}
		up <- n
	}()
	n, err := relay(c.nc, bc.c, touch)
	if err == nil {
		closeWrite(c.nc)
	} else {
		c.nc.Close()
		bc.c.Close()
	}
	m := <-up
	x.recv += uint64(n)
	x.sent += uint64(m)
	x.bodyIn, x.bodyOut = uint64(m), uint64(n)
	x.finish(false)
	return false
}

// relay copies src to dst until src's EOF (nil error) or an error, moving
// the idle deadlines with every read: a WebSocket that exchanges a small
// message now and then is not idle, however long it lives.
func relay(dst, src net.Conn, touch func()) (int64, error) {
	var total int64
	bufp := getLarge()
	defer putBuf(bufp)
	buf := *bufp
	for {
		n, err := src.Read(buf)
		if n > 0 {
			touch()
			w, werr := dst.Write(buf[:n])
			total += int64(w)
			if werr != nil {
				return total, werr
			}
		}
		switch {
		case errors.Is(err, io.EOF):
			return total, nil
		case err != nil:
			return total, err
		}
	}
}

// closeWrite half-closes c: FIN for TCP, close_notify for TLS.
func closeWrite(c net.Conn) {
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		cw.CloseWrite()
	}
}
