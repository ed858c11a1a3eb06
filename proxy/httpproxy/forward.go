package httpproxy

import (
	"net/netip"
	"strconv"
)

// reqView of an HTTP/1.1 request, read from its parsed head.

func (c *conn) hostHeader() []byte { return c.head.host.of(c.head.buf) }

func (c *conn) pathQuery() []byte { return c.head.path.of(c.head.buf) }

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
	x.status = r.status
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
	// What is left in c.out is written by the next readRequest, together
	// with the wait for the next request, or by serve when the connection
	// ends.
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

// errorBodyLen is the length of the body of an error page.
func errorBodyLen(status, idLen int) int {
	return 3 + 1 + len(statusText(status)) + len("\nrequest id: ") + idLen + 1
}

// appendErrorResponse appends a complete error response made by the proxy:
// a short text body naming the status and the request id.
func appendErrorResponse(dst []byte, st *state, status int, id []byte, keep, head bool) []byte {
	text := statusText(status)
	bodyLen := errorBodyLen(status, len(id))
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
