package httpproxy

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/textproto"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/net/http2"
)

// maxReplayBody is the largest HTTP/2 request body read whole before the
// request is sent, so that an idempotent request with a small body can
// still be retried on another backend.
const maxReplayBody = 16 << 10

// h2conn is one HTTP/2 client connection (RFC 9113): golang.org/x/net/http2
// runs the framing and calls ServeHTTP for every stream, which forwards
// the request over HTTP/1.1 through the same backend pool as HTTP/1.1
// clients use.
type h2conn struct {
	f         *Frontend
	client    netip.Addr
	clientStr string
	clientAP  netip.AddrPort
	secure    bool
	tlsVer    uint16
	nc        net.Conn

	mu   sync.Mutex // guards n, done and priv
	n    int        // handlers running
	done bool       // ServeConn returned: no handler may start
	idle chan struct{}
	priv *privPool   // with proxy_protocol: the connection's own backend connections
	old  []*privPool // pools of an earlier proxy_protocol version
}

// serveH2 serves an HTTP/2 connection until it ends, and waits for its
// handlers.
func (f *Frontend) serveH2(nc net.Conn, client netip.Addr, secure bool, tlsVer uint16) {
	h := &h2conn{f: f, client: client, clientStr: client.String(), secure: secure, tlsVer: tlsVer, nc: nc,
		idle: make(chan struct{})}
	h.clientAP = netip.AddrPortFrom(client, addrPortOf(nc.RemoteAddr()).Port())
	//lint:ignore SA1019 x/net's server is the one that serves a single connection
	f.h2s.ServeConn(nc, &http2.ServeConnOpts{Context: context.Background(), Handler: h, BaseConfig: f.h1s})
	nc.Close()
	h.mu.Lock()
	h.done = true
	n := h.n
	h.mu.Unlock()
	if n > 0 {
		<-h.idle
	}
	if h.priv != nil {
		h.priv.close()
	}
	for _, p := range h.old {
		p.close()
	}
}

// privPool returns the connection's own backend pool, made on first use.
func (h *h2conn) privPool(version string) *privPool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.priv == nil || h.priv.version != version {
		// A reload changed the version: connections opened with the old
		// header close with the client connection.
		old := h.priv
		h.priv = newPrivPool(version, h.nc)
		if old != nil {
			h.old = append(h.old, old)
		}
	}
	return h.priv
}

func (h *h2conn) enter() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.done {
		return false
	}
	h.n++
	return true
}

func (h *h2conn) leave() {
	h.mu.Lock()
	h.n--
	if h.n == 0 && h.done {
		close(h.idle)
	}
	h.mu.Unlock()
}

// h2req is one HTTP/2 request as the exchange sees it.
type h2req struct {
	h  *h2conn
	r  *http.Request
	w  http.ResponseWriter
	x  exchange
	id string

	outp *[]byte
	out  []byte

	le logEntry // the access log line
}

var h2reqs = sync.Pool{New: func() any { return new(h2req) }}

func (h *h2conn) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !h.enter() {
		return
	}
	defer h.leave()
	q := h2reqs.Get().(*h2req)
	if q.x.copyDone == nil {
		q.x.init(h.f)
	}
	q.x.f = h.f // the pool is shared by every frontend
	q.h, q.r, q.w = h, r, w
	fb := fieldPool.Get().(*fieldBufs)
	q.x.resp.fields = fb.resp[:0]
	q.serve()
	q.x.resp.fields = nil
	fieldPool.Put(fb)
	q.h, q.r, q.w, q.x.st, q.x.tgt, q.x.priv, q.x.le = nil, nil, nil, nil, nil, nil, nil
	h2reqs.Put(q)
}

func (q *h2req) serve() {
	f, r, x := q.h.f, q.r, &q.x
	st := f.st.Load()
	x.reset(st)
	q.id = ""
	if st.reqID != "" {
		if v := r.Header.Get(st.reqID); validRequestID([]byte(v)) {
			q.id = v
		}
	}
	if q.id == "" {
		var b [32]byte
		q.id = string(appendRequestID(b[:0]))
	}
	x.le = nil
	if st.alog != nil {
		x.le = &q.le
		q.le.reset(time.Now())
		q.le.client, q.le.tlsVer, q.le.proto = q.h.clientAP, q.h.tlsVer, 20
		q.le.setTextString(r.Method, r.Host, q.pathString())
		q.le.setID([]byte(q.id))
		defer q.endLog(st)
	}
	tgt, route, ok := st.router.pick(q)
	if x.le != nil {
		x.le.route = int16(route)
	}
	switch {
	case !ok:
		q.refuse(st, 404)
		return
	case tgt == nil:
		f.noBack.Add(1)
		q.refuse(st, 503)
		return
	}
	key := x.aim(tgt, q)
	x.priv = nil
	if st.cfg.ProxyProtocol != "" {
		x.priv = q.h.privPool(st.cfg.ProxyProtocol)
	}
	if tgt.h2c != nil {
		q.serveH2C(st, key)
		return
	}
	q.outp = getLarge()
	defer func() { putBuf(q.outp); q.outp, q.out = nil, nil }()

	// The body: none, small and known (sent with the head, replayable), or
	// streamed, with its length or chunked.
	cl := r.ContentLength
	if r.Body == nil || r.Body == http.NoBody {
		cl = 0
	}
	var small []byte
	if cl > 0 && cl <= maxReplayBody {
		small = make([]byte, cl)
		if _, err := io.ReadFull(r.Body, small); err != nil {
			q.refuse(st, 400) // shorter than its length, or reset
			return
		}
		x.bodyIn = uint64(cl)
	}
	q.out = q.appendBackendHead((*q.outp)[:0], st, cl)
	q.out = append(q.out, small...)
	stream := cl != 0 && small == nil
	x.copyAll = !stream
	var start func(*bconn)
	if stream {
		start = q.startCopy
	}
	// The client resetting the stream cuts the backend connection; q is
	// reused after this request, so a cut under way is waited for.
	cutDone := make(chan struct{})
	stop := context.AfterFunc(r.Context(), func() { x.cut(); close(cutDone) })
	defer func() {
		if !stop() {
			<-cutDone
		}
	}()
	idem := false
	switch r.Method {
	case "GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE":
		idem = true
	}
	err := x.roundTrip(r.Context(), key, q.out, idem && !stream, start)
	if err != nil {
		x.waitCopy(true)
		status := statusFor(err)
		if status == 503 {
			f.noBack.Add(1)
		}
		f.log.Debug("request failed", "client", q.h.client, "request_id", q.id, "err", err)
		q.refuse(st, status)
		return
	}
	resp := &x.resp
	for resp.status < 200 { // interim: x/net/http2 sends its own 100 Continue
		if resp.status == 101 {
			x.waitCopy(true)
			x.finish(false)
			q.refuse(st, 502)
			return
		}
		x.recv += uint64(resp.size)
		x.bc.in.consume(resp.size)
		if err := x.bc.readHead(resp); err != nil {
			x.waitCopy(true)
			x.finish(false)
			q.refuse(st, 502)
			return
		}
	}
	var mode uint8
	switch {
	case resp.bodyless(r.Method == "HEAD"):
		mode = bodyNone
	case resp.untilClose || (!resp.chunked && resp.contentLength < 0):
		mode = bodyClose
	case resp.chunked:
		mode = bodyDechunk
	default:
		mode = bodyLength
	}
	x.status = resp.status
	q.copyResponseHead(st, resp, mode)
	x.recv += uint64(resp.size)
	x.bc.in.consume(resp.size)
	q.out = q.out[:0]
	err = x.streamBody(q, mode, resp.contentLength)
	if err == nil {
		err = q.flush()
	}
	all := x.waitCopy(false)
	x.finish(err == nil && all && mode != bodyClose)
	if err != nil {
		f.log.Debug("response failed", "client", q.h.client, "request_id", q.id, "err", err)
		panic(http.ErrAbortHandler) // reset the stream: the body is incomplete
	}
}

// reqView of an HTTP/2 request.

func (q *h2req) hostHeader() []byte     { return []byte(q.r.Host) }
func (q *h2req) clientAddr() netip.Addr { return q.h.client }
func (q *h2req) pathQuery() []byte      { return []byte(q.pathString()) }
func (q *h2req) pathString() string {
	if q.r.RequestURI != "" {
		return q.r.RequestURI
	}
	return q.r.URL.RequestURI()
}
func (q *h2req) header(name string) ([]byte, bool) {
	vs := q.r.Header[textproto.CanonicalMIMEHeaderKey(name)]
	if len(vs) == 0 {
		return nil, false
	}
	return []byte(vs[0]), true
}
func (q *h2req) cookie(name string) ([]byte, bool) {
	for _, v := range q.r.Header["Cookie"] {
		if c, ok := cookieIn([]byte(v), name); ok {
			return c, true
		}
	}
	return nil, false
}

// appendFields appends h's fields as HTTP/1.1 field lines, values
// cleaned, without the names in skip, the request id field reqID (the
// proxy writes its own) and names that are not tokens.
func appendFields(dst []byte, h http.Header, skip map[string]bool, reqID string) []byte {
	for k, vs := range h {
		if skip[k] || k == reqID || !isToken([]byte(k)) {
			continue
		}
		for _, v := range vs {
			dst = append(dst, k...)
			dst = append(dst, ": "...)
			dst = append(dst, clean(v)...)
			dst = append(dst, "\r\n"...)
		}
	}
	return dst
}

// h2Hop are the fields an HTTP/2 request must not carry (RFC 9113
// §8.2.2) or that the proxy writes itself.
var h2Hop = map[string]bool{
	"Connection": true, "Keep-Alive": true, "Proxy-Connection": true, "Te": true,
	"Transfer-Encoding": true, "Upgrade": true, "Host": true, "Content-Length": true,
	"X-Forwarded-For": true, "X-Forwarded-Proto": true, "X-Forwarded-Host": true, "Cookie": true,
}

// appendBackendHead writes the HTTP/2 request as an HTTP/1.1 head, with
// the same additions as for HTTP/1.1 clients; cookie fields are joined
// with "; " (RFC 9113 §8.2.3).
func (q *h2req) appendBackendHead(dst []byte, st *state, cl int64) []byte {
	r := q.r
	dst = append(dst, r.Method...)
	dst = append(dst, ' ')
	dst = append(dst, q.pathQuery()...)
	dst = append(dst, " HTTP/1.1\r\nHost: "...)
	dst = append(dst, clean(r.Host)...)
	dst = append(dst, "\r\n"...)
	dst = appendFields(dst, r.Header, h2Hop, textproto.CanonicalMIMEHeaderKey(st.reqID))
	if cs := r.Header["Cookie"]; len(cs) > 0 {
		dst = append(dst, "Cookie: "...)
		for i, v := range cs {
			if i > 0 {
				dst = append(dst, "; "...)
			}
			dst = append(dst, clean(v)...)
		}
		dst = append(dst, "\r\n"...)
	}
	switch {
	case cl > 0:
		dst = append(dst, "Content-Length: "...)
		dst = strconv.AppendInt(dst, cl, 10)
		dst = append(dst, "\r\n"...)
	case cl < 0:
		dst = append(dst, "Transfer-Encoding: chunked\r\n"...)
	}
	dst = append(dst, "X-Forwarded-For: "...)
	for _, v := range r.Header["X-Forwarded-For"] {
		if v = strings.TrimSpace(clean(v)); v != "" {
			dst = append(dst, v...)
			dst = append(dst, ", "...)
		}
	}
	dst = append(dst, q.h.clientStr...)
	dst = append(dst, "\r\nX-Forwarded-Proto: "...)
	dst = append(dst, st.proto...)
	dst = append(dst, "\r\nX-Forwarded-Host: "...)
	dst = append(dst, clean(r.Host)...)
	dst = append(dst, "\r\n"...)
	dst = appendRequestIDField(dst, st, []byte(q.id))
	return append(dst, "\r\n"...)
}

// clean drops what must never reach an HTTP/1.1 head: x/net/http2 refuses
// such fields already; this is a second lock on the door.
func clean(s string) string {
	if strings.ContainsAny(s, "\r\n\x00") {
		return strings.Map(func(r rune) rune {
			if r == '\r' || r == '\n' || r == 0 {
				return -1
			}
			return r
		}, s)
	}
	return s
}

// startCopy streams the request body to the backend while the response
// is awaited.
func (q *h2req) startCopy(bc *bconn) {
	x := &q.x
	x.copying, x.copyErr, x.copyAll = true, nil, false
	x.abort = func() {
		q.r.Body.Close()
		x.cut()
	}
	chunked := q.r.ContentLength < 0
	go func() {
		err := q.copyBody(bc, chunked)
		x.copyErr, x.copyAll = err, err == nil
		if err != nil {
			bc.Close()
		}
		x.copyDone <- struct{}{}
	}()
}

func (q *h2req) copyBody(bc *bconn, chunked bool) error {
	bufp := getLarge()
	defer putBuf(bufp)
	buf := (*bufp)[:largeBufSize-32]
	var hdr [24]byte
	for {
		n, err := q.r.Body.Read(buf)
		if n > 0 {
			var werr error
			if chunked {
				_, werr = (&net.Buffers{appendChunkHeader(hdr[:0], n), buf[:n], []byte("\r\n")}).WriteTo(bc.c)
			} else {
				_, werr = bc.c.Write(buf[:n])
			}
			q.x.sent += uint64(n)
			q.x.bodyIn += uint64(n)
			if werr != nil {
				return werr
			}
		}
		if err == io.EOF {
			if chunked {
				_, err = bc.c.Write([]byte("0\r\n\r\n"))
				return err
			}
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// copyResponseHead sets the response fields and status on the stream.
func (q *h2req) copyResponseHead(st *state, r *respHead, mode uint8) {
	hdr := q.w.Header()
	b := r.buf
	for i := range r.fields {
		f := &r.fields[i]
		if f.hop {
			continue
		}
		switch f.kind {
		case kConnection, kKeepAlive, kProxyConnection, kTE, kContentLength, kTransferEncoding, kUpgrade:
			continue
		case kOther:
			if f.name.n() == len(st.reqIDLower) && eqFold(f.name.of(b), st.reqIDLower) {
				continue
			}
		}
		k := textproto.CanonicalMIMEHeaderKey(string(f.name.of(b)))
		hdr[k] = append(hdr[k], string(f.value.of(b)))
	}
	if mode == bodyLength || (mode == bodyNone && r.contentLength >= 0) {
		hdr.Set("Content-Length", strconv.FormatInt(r.contentLength, 10))
	}
	if st.reqID != "" {
		hdr.Set(st.reqID, q.id)
	}
	if tok, ok := q.x.setCookie(); ok {
		q.addSetCookie(tok)
	}
	q.w.WriteHeader(r.status)
}

// addSetCookie adds the sticky cookie to the response fields.
func (q *h2req) addSetCookie(tok string) {
	line := q.x.tgt.sticky.appendSetCookie(nil, tok, q.h.secure)
	v, _ := bytes.CutPrefix(bytes.TrimSuffix(line, []byte("\r\n")), []byte("Set-Cookie: "))
	q.w.Header().Add("Set-Cookie", string(v))
}

// emit and flush make the stream a sink.
func (q *h2req) emit(p []byte) error {
	_, err := q.w.Write(p)
	return err
}

func (q *h2req) flush() error {
	return http.NewResponseController(q.w).Flush()
}

// endLog completes the request's access log line and queues it.
func (q *h2req) endLog(st *state) {
	le := &q.le
	le.dur = time.Now().UnixNano() - le.start
	le.status = uint16(q.x.status)
	le.bytesIn, le.bytesOut = q.x.bodyIn, q.x.bodyOut
	st.alog.add(le)
}

// refuse answers an error page on the stream.
func (q *h2req) refuse(st *state, status int) {
	q.x.status = status
	if q.r.Method != "HEAD" {
		q.x.bodyOut = uint64(errorBodyLen(status, len(q.id)))
	}
	hdr := q.w.Header()
	hdr.Set("Content-Type", "text/plain; charset=utf-8")
	hdr.Set("Cache-Control", "no-store")
	if st.reqID != "" {
		hdr.Set(st.reqID, q.id)
	}
	q.w.WriteHeader(status)
	if q.r.Method != "HEAD" {
		io.WriteString(q.w, strconv.Itoa(status)+" "+statusText(status)+"\nrequest id: "+q.id+"\n")
	}
}
