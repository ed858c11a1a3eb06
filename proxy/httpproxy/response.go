package httpproxy

// respHead is a parsed HTTP/1.x response head from a backend (RFC 9112
// §4). Spans point into buf.
type respHead struct {
	buf    []byte
	size   int
	status int
	rest   span // the status line after the version: " 200 OK"
	minor  uint8
	fields []field

	contentLength int64 // -1: none
	chunked       bool
	untilClose    bool // a coding other than chunked last: the body ends at close (RFC 9112 §6.3 (4))
	close         bool // the backend closes the connection after this response
	upgrade       bool // Connection: upgrade
	opts          connOpts
}

// parseResponseHead parses the complete response head b into h. A backend
// is trusted more than a client, but the proxy still must know where the
// response ends to reuse the connection, so conflicting framing is an
// error: the caller answers 502 and closes the backend connection.
func parseResponseHead(h *respHead, b []byte) error {
	fields := h.fields[:0]
	*h = respHead{buf: b, fields: fields, contentLength: -1}
	line, off, err := nextLine(b, 0)
	if err != nil {
		return err
	}
	l := line.of(b)
	// status-line = HTTP-version SP 3DIGIT SP [reason-phrase]; some servers
	// leave out the SP of an empty reason.
	if len(l) < 12 || string(l[:7]) != "HTTP/1." || l[7] < '0' || l[7] > '9' || l[8] != ' ' ||
		(len(l) > 12 && l[12] != ' ') {
		return errBadResponse
	}
	code := 0
	for _, c := range l[9:12] {
		if c < '0' || c > '9' {
			return errBadResponse
		}
		code = code*10 + int(c-'0')
	}
	if code < 100 || code > 599 {
		return errBadResponse
	}
	for _, c := range l[12:] {
		if !valueOK[c] {
			return errBadResponse
		}
	}
	h.status = code
	h.rest = span{line.s + 8, line.e}
	if l[7] == '0' {
		h.minor = 0
	} else {
		h.minor = 1
	}
	var te teState
	for {
		line, off, err = nextLine(b, off)
		if err != nil {
			return err
		}
		if line.n() == 0 {
			break
		}
		if len(h.fields) == maxRespFields {
			return errResponseTooBig
		}
		f, err := parseField(b, line)
		if err != nil {
			return errBadResponse
		}
		v := f.value.of(b)
		switch f.kind {
		case kContentLength:
			n := parseLength(v)
			if n < 0 || (h.contentLength >= 0 && n != h.contentLength) {
				return errBadResponse
			}
			h.contentLength = n
		case kTransferEncoding:
			te.add(v)
		case kConnection:
			if !h.opts.add(b, v) {
				return errBadResponse
			}
		}
		h.fields = append(h.fields, f)
	}
	h.size = off
	if te.seen {
		if h.contentLength >= 0 {
			return errBadResponse // RFC 9112 §6.3 (3): treat as an error
		}
		if te.chunked && !te.bad && !te.other {
			h.chunked = true
		} else {
			h.untilClose = true
		}
	}
	h.upgrade = h.opts.upgrade
	h.close = h.opts.close || (h.minor == 0 && !h.opts.keepAlive) || h.untilClose
	h.opts.mark(b, h.fields)
	return nil
}

// bodyless reports whether the response has no body whatever its fields
// say (RFC 9112 §6.3 (1)): to HEAD, 1xx, 204 and 304.
func (h *respHead) bodyless(head bool) bool {
	return head || h.status < 200 || h.status == 204 || h.status == 304
}
