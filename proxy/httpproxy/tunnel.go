package httpproxy

import (
	"io"
	"net"
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
	touch := func() {
		if idle > 0 {
			dl := time.Now().Add(idle)
			c.nc.SetDeadline(dl)
			bc.c.SetDeadline(dl)
		}
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
	x.recv += uint64(n)
	x.sent += uint64(<-up)
	x.finish(false)
	return false
}

// relay copies src to dst until src's EOF (nil error) or an error, moving
// the idle deadlines with the traffic. Between two plain TCP connections
// the copy is a splice(2).
func relay(dst, src net.Conn, touch func()) (int64, error) {
	var total int64
	bufp := getLarge()
	defer putBuf(bufp)
	for {
		lr := io.LimitedReader{R: src, N: writeRefresh}
		var n int64
		var err error
		if d, ok := dst.(*net.TCPConn); ok {
			n, err = d.ReadFrom(&lr)
		} else {
			n, err = io.CopyBuffer(dst, &lr, *bufp)
		}
		total += n
		if err != nil {
			return total, err
		}
		if lr.N > 0 {
			return total, nil
		}
		touch()
	}
}

// closeWrite half-closes c: FIN for TCP, close_notify for TLS.
func closeWrite(c net.Conn) {
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		cw.CloseWrite()
	}
}
