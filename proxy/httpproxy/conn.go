package httpproxy

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// Connection states, as Close sees them.
const (
	connNew  int32 = iota // accepted, no request yet (TLS handshake, first head)
	connIdle              // waiting for the next request on a kept connection
	connBusy              // a request in flight
	connH2                // an HTTP/2 connection
)

// writeRefresh is how many bytes a response may send before the write
// deadline moves forward: a transfer slower than that per idle_timeout
// counts as stalled.
const writeRefresh = 512 << 10

var (
	errH2C        = errors.New("httpproxy: HTTP/2 prior knowledge")
	errClosing    = errors.New("httpproxy: frontend closing")
	errReqTimeout = newHTTPError(408, "request header timeout")
	aLongTimeAgo  = time.Unix(1, 0)
	h2Preface     = []byte("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
	connStructs   = sync.Pool{New: func() any { return new(conn) }}
)

// reqFacts is what the proxy still needs of a request once its head is
// forwarded and the buffer it lived in is reused for the body.
type reqFacts struct {
	head    bool // HEAD: the response has no body
	idem    bool // idempotent method
	close   bool // the client asked to close
	upgrade bool // forwarded as an Upgrade request
	minor   uint8
}

// conn is one client connection speaking HTTP/1.x. Its goroutine reads a
// request, forwards it, writes the response, and only then reads the next
// one: pipelined requests wait in the buffer.
type conn struct {
	f      *Frontend
	tcp    *net.TCPConn // the accepted socket
	nc     net.Conn     // tcp, or the TLS connection over it
	secure bool
	state  atomic.Int32
	accept time.Time

	in   inbuf
	sc   headScanner
	head reqHead
	fb   *fieldBufs // while a request is in flight
	m    reqFacts

	outp *[]byte
	out  []byte // what goes to the client (or, while sending, to the backend)

	wdlSet  bool // the response's write deadline is set
	written int  // bytes since the write deadline moved

	client    netip.Addr
	clientStr [64]byte
	clientLen int
	reqID     [maxRequestID]byte
	reqIDLen  int

	x        exchange
	ck       chunkParser // request body
	bodyLeft int64       // request body bytes not yet read (Content-Length)
	chunked  bool
	abortFn  func()
	idleFn   func() bool
	raw      rawIO // plain TCP: the last write of a response and the next read in one wait

	tlsVer uint16    // negotiated TLS version; 0: plain text
	priv   *privPool // with proxy_protocol: this connection's own backend connections
	le     logEntry  // the access log line of the request in flight
}

func newConn(f *Frontend, c *net.TCPConn) *conn {
	cn := connStructs.Get().(*conn)
	if cn.f == nil {
		cn.abortFn = cn.abortCopy
		cn.idleFn = cn.idle
		cn.x.init(f)
	}
	cn.f, cn.x.f = f, f
	cn.tcp, cn.nc, cn.secure = c, c, false
	cn.tlsVer, cn.priv = 0, nil
	cn.raw.init(c)
	cn.raw.after = cn.idleFn
	cn.state.Store(connNew)
	cn.accept = time.Now()
	if a, ok := c.RemoteAddr().(*net.TCPAddr); ok {
		cn.client = a.AddrPort().Addr().Unmap()
	} else {
		cn.client = netip.Addr{}
	}
	cn.clientLen = len(cn.client.AppendTo(cn.clientStr[:0]))
	return cn
}

// free closes the connection and returns c to the pool; c must be out of
// the frontend's sessions.
func (c *conn) free() {
	c.nc.Close()
	c.tcp.Close()
	if c.priv != nil {
		c.priv.close()
		c.priv, c.x.priv = nil, nil
	}
	c.in.release()
	c.putOut()
	c.releaseFields()
	c.nc, c.tcp = nil, nil
	c.x.st, c.x.tgt = nil, nil
	c.head.buf = nil
	connStructs.Put(c)
}

// shut closes the connection if it is idle, or at once when force. It is
// called with the frontend's mu held, so c is not freed meanwhile.
func (c *conn) shut(force bool) {
	if force {
		c.tcp.Close()
		c.x.cut()
		return
	}
	switch c.state.Load() {
	case connNew, connIdle:
		c.tcp.Close()
	}
}

func (c *conn) serve() {
	st := c.f.st.Load()
	if st.tls != nil {
		tc := tls.Server(c.tcp, st.tls)
		if st.header > 0 {
			c.tcp.SetDeadline(c.accept.Add(st.header))
		}
		if err := tc.HandshakeContext(context.Background()); err != nil {
			c.f.log.Debug("TLS handshake failed", "client", c.client, "err", err)
			return
		}
		c.nc, c.secure = tc, true
		cs := tc.ConnectionState()
		c.tlsVer = cs.Version
		if cs.NegotiatedProtocol == "h2" {
			c.tcp.SetDeadline(time.Time{})
			c.state.Store(connH2)
			c.f.serveH2(tc, c.client, true, c.tlsVer)
			return
		}
	}
	c.in.get(false)
	for {
		st := c.f.st.Load()
		err := c.readRequest(st)
		if err != nil {
			var he *httpError
			switch {
			case errors.As(err, &he):
				c.genRequestID()
				c.m = reqFacts{close: true}
				c.x.reset(st)
				c.startLog(st)
				c.refuse(st, he.status, true)
				c.endLog(st)
				c.f.log.Debug("bad request", "client", c.client, "err", err)
			case errors.Is(err, errH2C):
				c.state.Store(connH2)
				pc := &prefixConn{Conn: c.nc, prefix: c.in.data()}
				c.f.serveH2(pc, c.client, false, 0)
			}
			return
		}
		st = c.f.st.Load() // the latest: a reload while idle applies
		c.startLog(st)
		keep := c.handle(st)
		c.endLog(st)
		c.releaseFields()
		if !keep {
			c.flush()
			return
		}
	}
}

// readRequest reads and parses the next request head. The first head of
// a connection must arrive within header_timeout of the accept; later ones
// may wait idle_timeout for their first byte, then have header_timeout for
// the rest. A partial head that times out is answered 408 (slowloris); a
// connection that sent nothing is closed silently.
func (c *conn) readRequest(st *state) error {
	c.sc = headScanner{}
	c.wdlSet = false
	first := c.state.Load() == connNew
	started := c.in.len() > 0
	now := time.Now()
	if first || started {
		err := c.flush()
		c.putOut()
		if err != nil {
			return err
		}
		base := now
		if first {
			base = c.accept
		}
		if st.header > 0 {
			c.nc.SetReadDeadline(base.Add(st.header))
		} else {
			c.nc.SetReadDeadline(after(base, st.idle))
		}
	} else {
		c.in.shrink()
		c.nc.SetReadDeadline(after(now, st.idle))
		if len(c.out) > 0 && !c.secure {
			// The end of the last response is still to be written: write
			// it and wait for the next request in one go (rawIO).
			nw, nr, err := c.raw.writeRead(c.out, c.in.b[c.in.w:])
			c.in.w += nr
			if err == nil && nw < len(c.out) {
				err = c.writeClient(c.out[nw:])
			}
			c.putOut()
			if err != nil {
				return err
			}
			started = nr > 0
		} else {
			err := c.flush()
			c.putOut()
			if err != nil {
				return err
			}
		}
		if !started && !c.idle() {
			return errClosing
		}
		if started {
			c.state.Store(connBusy)
			if st.header > 0 {
				c.nc.SetReadDeadline(time.Now().Add(st.header))
			}
		}
	}
	for {
		if c.in.len() > 0 {
			if first && !c.secure {
				if p := c.in.data(); len(p) < len(h2Preface) && string(p) == string(h2Preface[:len(p)]) {
					goto read // maybe HTTP/2 prior knowledge: wait for the whole preface
				} else if len(p) >= len(h2Preface) && string(p[:len(h2Preface)]) == string(h2Preface) {
					return errH2C
				}
			}
			n, err := c.sc.scan(c.in.data())
			if err != nil {
				return err
			}
			if n > 0 {
				c.state.Store(connBusy)
				c.holdFields()
				return parseRequestHead(&c.head, c.in.data()[:n])
			}
		}
	read:
		nr, err := c.in.fill(c.nc)
		if nr > 0 && !started {
			started = true
			c.state.Store(connBusy)
			if st.header > 0 && !first {
				c.nc.SetReadDeadline(time.Now().Add(st.header))
			}
		}
		if err != nil && nr == 0 {
			if isTimeout(err) && started {
				return errReqTimeout
			}
			return err
		}
	}
}

// idle marks the connection idle once its response is written; Close may
// close it from then on. It reports false when Close has begun: the
// connection ends instead of waiting.
func (c *conn) idle() bool {
	if c.state.Load() == connIdle {
		return !c.f.closingNow()
	}
	c.state.Store(connIdle)
	return !c.f.closingNow()
}

// after returns the deadline d after t, or none for d <= 0.
func after(t time.Time, d time.Duration) time.Time {
	if d <= 0 {
		return time.Time{}
	}
	return t.Add(d)
}

// handle forwards one request and writes its response. It reports whether
// the connection can serve another request.
func (c *conn) handle(st *state) bool {
	h := &c.head
	x := &c.x
	x.reset(st)
	c.wdlSet, c.written = false, 0
	c.setRequestID(st)
	c.m = reqFacts{head: h.isHEAD(), idem: h.idempotent(), close: h.close, minor: h.minor,
		upgrade: h.upgrade && !onlyH2C(h)}
	if le := x.le; le != nil {
		le.setText(h.method.of(h.buf), h.host.of(h.buf), h.path.of(h.buf))
		le.setID(c.reqID[:c.reqIDLen])
		le.proto = 10 + h.minor
	}
	pending := h.hasBody()
	// The head stays readable until the buffer is filled again, which
	// happens only once it has been forwarded.
	c.in.consume(h.size)
	tgt, route, ok := st.router.pick(c)
	if x.le != nil {
		x.le.route = int16(route)
	}
	switch {
	case !ok:
		return c.refuse(st, 404, pending)
	case tgt == nil:
		c.f.noBack.Add(1)
		return c.refuse(st, 503, pending)
	}
	key := x.aim(tgt, c)
	x.priv = nil
	if st.cfg.ProxyProtocol != "" {
		if c.priv == nil || c.priv.version != st.cfg.ProxyProtocol {
			if c.priv != nil {
				c.priv.close()
			}
			c.priv = newPrivPool(st.cfg.ProxyProtocol, c.tcp)
		}
		x.priv = c.priv
	}
	if tgt.h2c != nil {
		return c.handleH2C(st, key)
	}
	c.getOut()
	c.out = c.appendBackendHead(c.out, st)
	c.chunked = h.chunked
	cl := h.contentLength

	done := true
	switch {
	case c.chunked:
		c.ck = chunkParser{}
		var err error
		if c.out, err = c.reframeBuffered(c.out); err != nil {
			if isTimeout(err) {
				return c.refuse(st, 408, true)
			}
			if errors.Is(err, errChunk) {
				return c.refuse(st, 400, true)
			}
			return false
		}
		done = c.ck.done()
	case cl > 0:
		k := int(min(cl, int64(c.in.len())))
		c.out = append(c.out, c.in.data()[:k]...)
		c.in.consume(k)
		c.bodyLeft = cl - int64(k)
		x.bodyIn = uint64(k)
		done = c.bodyLeft == 0
	}
	x.copyAll = done
	var start func(*bconn)
	if !done {
		start = c.startCopy
	}
	err := x.roundTrip(context.Background(), key, c.out, c.m.idem && done, start)
	if err != nil {
		all := x.waitCopy(true)
		status := statusFor(err)
		switch {
		case errors.Is(x.copyErr, errChunk):
			status = 400
		case status == 503:
			c.f.noBack.Add(1)
		}
		c.f.log.Debug("request failed", "client", c.client, "request_id", string(c.reqID[:c.reqIDLen]), "err", err)
		return c.refuse(st, status, !(done || all))
	}
	return c.respond(st)
}

// onlyH2C reports an Upgrade to h2c alone, which the proxy does not do
// (RFC 9113 §3.1 deprecates it); the request goes on as HTTP/1.1.
func onlyH2C(h *reqHead) bool {
	only := true
	for i := range h.fields {
		f := &h.fields[i]
		if f.kind == kUpgrade {
			listElems(f.value.of(h.buf), func(el []byte) bool {
				only = only && eqFold(el, "h2c")
				return only
			})
		}
	}
	return only
}

// setRequestID takes the client's request id when it is sane, else makes
// one.
func (c *conn) setRequestID(st *state) {
	if st.reqIDLower != "" {
		if v, ok := c.head.header(st.reqIDLower); ok && validRequestID(v) {
			c.reqIDLen = copy(c.reqID[:], v)
			return
		}
	}
	c.genRequestID()
}

func (c *conn) genRequestID() {
	c.reqIDLen = len(appendRequestID(c.reqID[:0]))
}

// fieldBufs hold the header fields of a request and of its response;
// connections borrow them only while a request is in flight.
type fieldBufs struct {
	req  [maxFields]field
	resp [maxRespFields]field
}

var fieldPool = sync.Pool{New: func() any { return new(fieldBufs) }}

func (c *conn) holdFields() {
	if c.fb == nil {
		c.fb = fieldPool.Get().(*fieldBufs)
		c.head.fields = c.fb.req[:0]
		c.x.resp.fields = c.fb.resp[:0]
	}
}

func (c *conn) releaseFields() {
	if c.fb != nil {
		fieldPool.Put(c.fb)
		c.fb = nil
		c.head.fields, c.x.resp.fields = nil, nil
	}
}

func (c *conn) getOut() {
	if c.outp == nil {
		c.outp = getLarge()
		c.out = (*c.outp)[:0]
	}
}

func (c *conn) putOut() {
	if c.outp != nil {
		putBuf(c.outp)
		c.outp, c.out = nil, nil
	}
}

// emit queues p for the client: it joins the head in one write when it
// fits, and is written straight from p when it is large.
func (c *conn) emit(p []byte) error {
	if len(c.out)+len(p) <= cap(c.out) {
		c.out = append(c.out, p...)
		return nil
	}
	if err := c.flush(); err != nil {
		return err
	}
	if len(p) >= cap(c.out)/2 {
		return c.writeClient(p)
	}
	c.out = append(c.out, p...)
	return nil
}

// flush writes what emit queued.
func (c *conn) flush() error {
	if len(c.out) == 0 {
		return nil
	}
	err := c.writeClient(c.out)
	c.out = c.out[:0]
	return err
}

// writeClient writes to the client within idle_timeout: a client that
// stops reading cannot hold the proxy's buffers (and the backend) longer.
func (c *conn) writeClient(p []byte) error {
	if !c.wdlSet || c.written >= writeRefresh {
		var dl time.Time
		if idle := c.x.st.idle; idle > 0 {
			dl = time.Now().Add(idle)
		}
		c.nc.SetWriteDeadline(dl)
		c.wdlSet, c.written = true, 0
	}
	n, err := c.nc.Write(p)
	c.written += n
	if err != nil {
		return errClientGone
	}
	return nil
}

// refuse answers status with an error page carrying the request id. The
// connection is kept unless close, the client asked, or a request body is
// left unread.
func (c *conn) refuse(st *state, status int, close bool) bool {
	keep := !close && !c.m.close && !c.f.closingNow()
	if c.x.st == nil {
		c.x.st = st
	}
	c.x.status = status
	if !c.m.head {
		c.x.bodyOut = uint64(errorBodyLen(status, c.reqIDLen))
	}
	c.getOut()
	c.out = appendErrorResponse(c.out[:0], st, status, c.reqID[:c.reqIDLen], keep, c.m.head)
	if c.flush() != nil {
		return false
	}
	if !keep {
		c.lingerClose()
	}
	return keep
}

// Lingering close (RFC 9112 §9.6): after an error response the client may
// still be sending. Closing with unread data makes the kernel send a
// reset, which can destroy the response before the client reads it; so
// the proxy half-closes, then reads and drops what comes for a while.
const (
	lingerTime  = 500 * time.Millisecond
	lingerBytes = 256 << 10
)

func (c *conn) lingerClose() {
	closeWrite(c.nc)
	c.nc.SetReadDeadline(time.Now().Add(lingerTime))
	c.in.r, c.in.w = 0, 0
	for n := 0; n < lingerBytes; {
		m, err := c.in.fill(c.nc)
		n += m
		c.in.r, c.in.w = 0, 0
		if err != nil {
			return
		}
	}
}

// prefixConn is a connection whose first bytes were already read.
type prefixConn struct {
	net.Conn
	prefix []byte
}

func (p *prefixConn) Read(b []byte) (int, error) {
	if len(p.prefix) > 0 {
		n := copy(b, p.prefix)
		p.prefix = p.prefix[n:]
		return n, nil
	}
	return p.Conn.Read(b)
}

// startLog begins the access log line of a request whose head was just
// read, when the frontend logs.
func (c *conn) startLog(st *state) {
	if st.alog == nil {
		c.x.le = nil
		return
	}
	le := &c.le
	le.reset(time.Now())
	le.client = netip.AddrPortFrom(c.client, c.tcpPort())
	le.tlsVer = c.tlsVer
	le.proto = 11
	le.setID(c.reqID[:c.reqIDLen])
	c.x.le = le
}

// endLog completes the line and queues it.
func (c *conn) endLog(st *state) {
	le := c.x.le
	if le == nil {
		return
	}
	le.dur = time.Now().UnixNano() - le.start
	le.status = uint16(c.x.status)
	le.bytesIn, le.bytesOut = c.x.bodyIn, c.x.bodyOut
	st.alog.add(le)
	c.x.le = nil
}

// tcpPort returns the client's port.
func (c *conn) tcpPort() uint16 {
	if a, ok := c.tcp.RemoteAddr().(*net.TCPAddr); ok {
		return uint16(a.Port)
	}
	return 0
}
