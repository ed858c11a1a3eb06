package httpproxy

import (
	"io"
	"net"
	"net/netip"
	"strconv"
	"time"
)

// reqView of an HTTP/1.1 request, read from its parsed head.

func (c *conn) hostHeader() []byte     { return c.head.host.of(c.head.buf) }
func (c *conn) pathQuery() []byte      { return c.head.path.of(c.head.buf) }
func (c *conn) clientAddr() netip.Addr { return c.client }
func (c *conn) header(name string) ([]byte, bool) {
	return c.head.header(name)
}
func (c *conn) cookie(name string) ([]byte, bool) {
	h := &c.head
	for i := range h.fields {
		if f := &h.fields[i]; f.kind == kCookie {
			if v, ok := cookieIn(f.value.of(h.buf), name); ok {
				return v, true
			}
		}
	}
	return nil, false
}

// appendBackendHead appends the request head as the backend gets it (RFC
// 9110 §7.6): the request line in origin-form and HTTP/1.1, the client's
// fields without the hop-by-hop ones (Connection and the fields it names,
// Keep-Alive, Proxy-Connection, TE, Transfer-Encoding, Upgrade unless
// upgrading), framing written anew, then X-Forwarded-For (the client's
// values with its address appended), X-Forwarded-Proto, X-Forwarded-Host
// and the request id. A client's X-Forwarded-Proto and -Host are replaced.
func (c *conn) appendBackendHead(dst []byte, st *state) []byte {
	h := &c.head
	b := h.buf
	dst = append(dst, h.method.of(b)...)
	dst = append(dst, ' ')
	if h.absolute {
		p := h.path.of(b)
		if len(p) == 0 || p[0] != '/' {
			dst = append(dst, '/')
		}
		dst = append(dst, p...)
	} else {
		dst = append(dst, h.target.of(b)...)
	}
	dst = append(dst, " HTTP/1.1\r\n"...)
	if h.absolute || h.hostField < 0 { // RFC 9112 §3.2: Host, empty if there is none
		dst = append(dst, "Host: "...)
		dst = append(dst, h.host.of(b)...)
		dst = append(dst, "\r\n"...)
	}
	var xff [8]int
	nxff := 0
	for i := range h.fields {
		f := &h.fields[i]
		if f.hop {
			continue
		}
		switch f.kind {
		case kConnection, kKeepAlive, kProxyConnection, kTE, kTransferEncoding, kContentLength, kXFProto, kXFHost:
			continue
		case kUpgrade:
			if !c.m.upgrade {
				continue
			}
		case kHost:
			if h.absolute {
				continue
			}
		case kXFF:
			if nxff < len(xff) && f.value.n() > 0 {
				xff[nxff] = i
				nxff++
			}
			continue
		case kOther:
			if f.name.n() == len(st.reqIDLower) && eqFold(f.name.of(b), st.reqIDLower) {
				continue
			}
		}
		dst = append(dst, b[f.name.s:f.value.e]...)
		dst = append(dst, "\r\n"...)
	}
	if h.chunked {
		dst = append(dst, "Transfer-Encoding: chunked\r\n"...)
	} else if h.contentLength >= 0 {
		dst = append(dst, "Content-Length: "...)
		dst = strconv.AppendInt(dst, h.contentLength, 10)
		dst = append(dst, "\r\n"...)
	}
	if c.m.upgrade {
		dst = append(dst, "Connection: Upgrade\r\n"...)
	}
	dst = append(dst, "X-Forwarded-For: "...)
	for _, i := range xff[:nxff] {
		dst = append(dst, h.fields[i].value.of(b)...)
		dst = append(dst, ", "...)
	}
	dst = append(dst, c.clientStr[:c.clientLen]...)
	dst = append(dst, "\r\nX-Forwarded-Proto: "...)
	dst = append(dst, st.proto...)
	dst = append(dst, "\r\n"...)
	if h.host.n() > 0 {
		dst = append(dst, "X-Forwarded-Host: "...)
		dst = append(dst, h.host.of(b)...)
		dst = append(dst, "\r\n"...)
	}
	dst = appendRequestIDField(dst, st, c.reqID[:c.reqIDLen])
	return append(dst, "\r\n"...)
}

func appendRequestIDField(dst []byte, st *state, id []byte) []byte {
	if st.reqID == "" {
		return dst
	}
	dst = append(dst, st.reqID...)
	dst = append(dst, ": "...)
	dst = append(dst, id...)
	return append(dst, "\r\n"...)
}

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

// respond writes the backend's response to the client.
func (c *conn) respond(st *state) bool {
	x := &c.x
	r := &x.resp
	for r.status < 200 && r.status != 101 { // interim responses (RFC 9110 §15.2)
		if c.m.minor == 1 {
			c.out = appendInterim(c.out[:0], r)
			if c.flush() != nil {
				x.waitCopy(true)
				x.finish(false)
				return false
			}
		}
		x.recv += uint64(r.size)
		x.bc.in.consume(r.size)
		if err := x.bc.readHead(r); err != nil {
			all := x.waitCopy(true)
			x.b.CountFailure()
			x.finish(false)
			status := 502
			if isTimeout(err) {
				status = 504
			}
			return c.refuse(st, status, !all)
		}
	}
	if r.status == 101 {
		if !c.m.upgrade {
			x.waitCopy(true)
			x.finish(false)
			return c.refuse(st, 502, true)
		}
		return c.tunnel(st)
	}
	keep := !c.m.close && !c.f.closingNow()
	var mode uint8
	switch {
	case r.bodyless(c.m.head):
		mode = bodyNone
	case r.untilClose || (!r.chunked && r.contentLength < 0):
		mode, keep = bodyClose, false
	case r.chunked && c.m.minor == 1:
		mode = bodyChunked
	case r.chunked:
		mode, keep = bodyDechunk, false
	default:
		mode = bodyLength
	}
	tok, set := x.setCookie()
	c.out = c.appendResponseHead(c.out[:0], st, r, mode, keep, tok, set)
	x.recv += uint64(r.size)
	x.bc.in.consume(r.size)
	err := x.streamBody(c, mode, r.contentLength)
	all := x.waitCopy(false)
	// The backend connection goes back to the pool before the client has
	// the end of the response, so that its next request finds it there.
	x.finish(err == nil && all && mode != bodyClose)
	if err == nil {
		err = c.flush()
	}
	if err != nil {
		c.f.log.Debug("response failed", "client", c.client, "request_id", string(c.reqID[:c.reqIDLen]), "err", err)
		return false
	}
	return keep && all
}

// appendResponseHead appends the response head for the client: the
// backend's status and fields without the hop-by-hop ones, framing for
// mode, the request id, the sticky cookie, and Connection as decided.
func (c *conn) appendResponseHead(dst []byte, st *state, r *respHead, mode uint8, keep bool, tok string, setCookie bool) []byte {
	b := r.buf
	dst = append(dst, "HTTP/1.1"...)
	dst = append(dst, r.rest.of(b)...)
	dst = append(dst, "\r\n"...)
	for i := range r.fields {
		f := &r.fields[i]
		if f.hop {
			continue
		}
		switch f.kind {
		case kConnection, kKeepAlive, kProxyConnection, kTE, kContentLength, kTransferEncoding:
			continue
		case kUpgrade:
			if r.status != 101 {
				continue
			}
		case kOther:
			if f.name.n() == len(st.reqIDLower) && eqFold(f.name.of(b), st.reqIDLower) {
				continue
			}
		}
		dst = append(dst, b[f.name.s:f.value.e]...)
		dst = append(dst, "\r\n"...)
	}
	switch {
	case mode == bodyChunked:
		dst = append(dst, "Transfer-Encoding: chunked\r\n"...)
	case r.contentLength >= 0 && mode != bodyDechunk && mode != bodyClose:
		dst = append(dst, "Content-Length: "...)
		dst = strconv.AppendInt(dst, r.contentLength, 10)
		dst = append(dst, "\r\n"...)
	}
	switch {
	case r.status == 101:
		dst = append(dst, "Connection: Upgrade\r\n"...)
	case !keep:
		dst = append(dst, "Connection: close\r\n"...)
	case c.m.minor == 0:
		dst = append(dst, "Connection: keep-alive\r\n"...)
	}
	dst = appendRequestIDField(dst, st, c.reqID[:c.reqIDLen])
	if setCookie {
		dst = c.x.tgt.sticky.appendSetCookie(dst, tok, c.secure)
	}
	return append(dst, "\r\n"...)
}

// appendInterim appends a 1xx response as received, less hop-by-hop
// fields.
func appendInterim(dst []byte, r *respHead) []byte {
	b := r.buf
	dst = append(dst, "HTTP/1.1"...)
	dst = append(dst, r.rest.of(b)...)
	dst = append(dst, "\r\n"...)
	for i := range r.fields {
		f := &r.fields[i]
		switch {
		case f.hop, f.kind == kConnection, f.kind == kKeepAlive, f.kind == kProxyConnection,
			f.kind == kTE, f.kind == kTransferEncoding, f.kind == kUpgrade, f.kind == kContentLength:
			continue
		}
		dst = append(dst, b[f.name.s:f.value.e]...)
		dst = append(dst, "\r\n"...)
	}
	return append(dst, "\r\n"...)
}

// appendErrorResponse appends a complete error response made by the proxy:
// a short text body naming the status and the request id.
func appendErrorResponse(dst []byte, st *state, status int, id []byte, keep, head bool) []byte {
	text := statusText(status)
	bodyLen := 3 + 1 + len(text) + len("\nrequest id: ") + len(id) + 1
	dst = append(dst, "HTTP/1.1 "...)
	dst = strconv.AppendInt(dst, int64(status), 10)
	dst = append(dst, ' ')
	dst = append(dst, text...)
	dst = append(dst, "\r\nContent-Type: text/plain; charset=utf-8\r\nCache-Control: no-store\r\nContent-Length: "...)
	dst = strconv.AppendInt(dst, int64(bodyLen), 10)
	dst = append(dst, "\r\n"...)
	if !keep {
		dst = append(dst, "Connection: close\r\n"...)
	}
	dst = appendRequestIDField(dst, st, id)
	dst = append(dst, "\r\n"...)
	if head {
		return dst
	}
	dst = strconv.AppendInt(dst, int64(status), 10)
	dst = append(dst, ' ')
	dst = append(dst, text...)
	dst = append(dst, "\nrequest id: "...)
	dst = append(dst, id...)
	return append(dst, '\n')
}

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
					}
					in.consume(m)
				}
			case bodyClose:
				if err := s.emit(in.data()); err != nil {
					return errClientGone
				}
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
