package httpproxy

import "bytes"

// reqHead is a parsed HTTP/1.x request head (RFC 9112 §3, §5). Spans
// point into buf, the connection's input buffer, which must not change
// while the head is in use.
type reqHead struct {
	buf    []byte // buf[:size] is the head
	size   int
	method span
	target span // as received
	path   span // origin-form target: target, or the path of an absolute-form target
	minor  uint8
	fields []field

	host          span  // Host value, or the authority of an absolute-form target
	hostField     int   // index of the Host field, -1 when absent
	contentLength int64 // -1: no Content-Length
	chunked       bool
	close         bool // the client wants the connection closed after this exchange (RFC 9112 §9.3)
	upgrade       bool // Connection: upgrade with an Upgrade field (RFC 9110 §7.8)
	expect100     bool
	absolute      bool // absolute-form target

	opts connOpts
}

// hasBody reports whether a message body follows the head.
func (h *reqHead) hasBody() bool { return h.chunked || h.contentLength > 0 }

// idempotent reports whether the method may be retried after it reached a
// backend (RFC 9110 §9.2.2).
func (h *reqHead) idempotent() bool {
	m := h.method.of(h.buf)
	switch string(m) {
	case "GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE":
		return true
	}
	return false
}

// isHEAD reports a HEAD request, whose response has no body.
func (h *reqHead) isHEAD() bool { return string(h.method.of(h.buf)) == "HEAD" }

// header returns the value of the first field called name (lower case),
// and whether there is one.
func (h *reqHead) header(name string) ([]byte, bool) {
	for i := range h.fields {
		f := &h.fields[i]
		if eqFold(f.name.of(h.buf), name) {
			return f.value.of(h.buf), true
		}
	}
	return nil, false
}

// parseRequestHead parses the complete head b (as found by headScanner:
// it ends with an empty line) into h. It checks everything that decides
// how the message is framed and refuses, with the status to answer, what
// two HTTP implementations could read differently: Content-Length with
// Transfer-Encoding, differing Content-Lengths, a coding after chunked,
// obsolete folding, bare CR or LF, NUL and other controls, whitespace
// before a colon, several Host fields.
func parseRequestHead(h *reqHead, b []byte) error {
	fields := h.fields[:0]
	*h = reqHead{buf: b, fields: fields, hostField: -1, contentLength: -1}
	off := 0
	for off+1 < len(b) && b[off] == '\r' && b[off+1] == '\n' {
		off += 2
	}
	line, off, err := nextLine(b, off)
	if err != nil {
		return err
	}
	if line.n() > maxRequestLine {
		return errURITooLong
	}
	if err := h.parseRequestLine(line); err != nil {
		return err
	}
	var te teState
	upgradeField := false
	for {
		line, off, err = nextLine(b, off)
		if err != nil {
			return err
		}
		if line.n() == 0 {
			break
		}
		if len(h.fields) == maxFields {
			return errTooManyFields
		}
		f, err := parseField(b, line)
		if err != nil {
			return err
		}
		v := f.value.of(b)
		switch f.kind {
		case kOther:
			if framingLookalike(f.name.of(b)) {
				return errFieldName
			}
		case kHost:
			if h.hostField >= 0 {
				return errHost
			}
			for _, c := range v {
				if !hostOK[c] {
					return errHost
				}
			}
			h.hostField = len(h.fields)
			if !h.absolute {
				h.host = f.value
			}
		case kContentLength:
			n := parseLength(v)
			if n < 0 || (h.contentLength >= 0 && n != h.contentLength) {
				return errContentLength
			}
			h.contentLength = n
		case kTransferEncoding:
			te.add(v)
		case kConnection:
			if !h.opts.add(b, v) {
				return errConnection
			}
		case kUpgrade:
			upgradeField = true
		case kExpect:
			if eqFold(v, "100-continue") {
				h.expect100 = true
			}
		}
		h.fields = append(h.fields, f)
	}
	if off > maxHeadBytes {
		return errHeadTooLarge
	}
	h.size = off
	if h.hostField < 0 && h.minor == 1 {
		return errHost // RFC 9112 §3.2: exactly one Host in HTTP/1.1
	}
	if te.seen {
		switch {
		case h.minor == 0:
			return errTEHTTP10 // RFC 9112 §6.1
		case h.contentLength >= 0:
			return errCLAndTE // RFC 9112 §6.3 (3): smuggling
		case te.bad || !te.chunked:
			return errTENotChunked // RFC 9112 §6.3 (4)
		case te.other:
			return errTEUnsupported
		}
		h.chunked = true
	}
	// RFC 9110 §7.8: Upgrade needs the option, and is ignored from HTTP/1.0.
	h.upgrade = h.opts.upgrade && upgradeField && h.minor == 1
	h.close = h.opts.close || (h.minor == 0 && !h.opts.keepAlive)
	h.opts.mark(b, h.fields)
	return nil
}

// parseRequestLine parses "method SP request-target SP HTTP-version",
// single spaces only (RFC 9112 §3).
func (h *reqHead) parseRequestLine(l span) error {
	b := h.buf
	s, e := int(l.s), int(l.e)
	sp1 := bytes.IndexByte(b[s:e], ' ')
	if sp1 <= 0 {
		return errRequestLine
	}
	sp1 += s
	sp2 := bytes.IndexByte(b[sp1+1:e], ' ')
	if sp2 < 0 {
		return errRequestLine
	}
	sp2 += sp1 + 1
	h.method = span{int32(s), int32(sp1)}
	h.target = span{int32(sp1 + 1), int32(sp2)}
	if !isToken(h.method.of(b)) {
		return errMethod
	}
	if err := h.parseVersion(b[sp2+1 : e]); err != nil {
		return err
	}
	return h.parseTarget()
}

// parseVersion accepts HTTP/1.0 and HTTP/1.1 (a higher 1.x is served as
// 1.1, RFC 9110 §2.5); another major version is 505.
func (h *reqHead) parseVersion(v []byte) error {
	if len(v) != 8 || string(v[:5]) != "HTTP/" || v[6] != '.' ||
		v[5] < '0' || v[5] > '9' || v[7] < '0' || v[7] > '9' {
		return errVersion
	}
	if v[5] != '1' {
		return errVersionSupport
	}
	h.minor = 1
	if v[7] == '0' {
		h.minor = 0
	}
	return nil
}

// parseTarget checks the request target (RFC 9112 §3.2): origin-form,
// absolute-form with http or https, or "*" for OPTIONS. Only visible ASCII
// is allowed. CONNECT's authority-form is refused with 405.
func (h *reqHead) parseTarget() error {
	b := h.buf
	t := h.target.of(b)
	if len(t) == 0 {
		return errTarget
	}
	for _, c := range t {
		if c <= ' ' || c >= 0x7f {
			return errTarget
		}
	}
	if string(h.method.of(b)) == "CONNECT" {
		return errConnect
	}
	h.path = h.target
	switch {
	case t[0] == '/':
		return nil
	case len(t) == 1 && t[0] == '*':
		if string(h.method.of(b)) != "OPTIONS" {
			return errTarget
		}
		return nil
	}
	// absolute-form: scheme "://" authority [path-abempty] [ "?" query ]
	i := bytes.Index(t, []byte("://"))
	if i < 0 || !(eqFold(t[:i], "http") || eqFold(t[:i], "https")) {
		return errTarget
	}
	auth := t[i+3:]
	end := bytes.IndexAny(auth, "/?")
	if end < 0 {
		end = len(auth)
	}
	if end == 0 || bytes.IndexByte(auth[:end], '@') >= 0 {
		return errTarget // no authority, or userinfo (RFC 9110 §4.2.4)
	}
	for _, c := range auth[:end] {
		if !hostOK[c] {
			return errTarget
		}
	}
	as := h.target.s + int32(i+3)
	h.host = span{as, as + int32(end)}
	h.path = span{as + int32(end), h.target.e}
	h.absolute = true
	return nil
}

// framingLookalike reports "Content_Length" or "Transfer_Encoding": a
// backend that maps "_" to "-" (CGI, some frameworks) would frame the
// message by a field the proxy does not see as framing.
func framingLookalike(name []byte) bool {
	if (len(name) != 14 && len(name) != 17) || bytes.IndexByte(name, '_') < 0 {
		return false
	}
	var buf [17]byte
	for i, c := range name {
		if c == '_' {
			c = '-'
		}
		buf[i] = lower(c)
	}
	n := string(buf[:len(name)])
	return n == "content-length" || n == "transfer-encoding"
}
