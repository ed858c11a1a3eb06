package httpproxy

import "bytes"

// Limits on what a client may send (RFC 9112 §3: "a server that receives a
// request-target longer than any URI it wishes to parse MUST respond with a
// 414"; RFC 6585 §5: 431 for header fields too large). HAProxy's default
// buffer is 16 KiB; nginx allows 8 KiB per line.
const (
	maxRequestLine = 8 << 10  // request line: 414 beyond
	maxHeadBytes   = 24 << 10 // whole header section: 431 beyond
	maxFields      = 100      // header fields: 431 beyond
	maxRespFields  = 200      // header fields of a backend response
	maxConnTokens  = 16       // options listed in Connection
	maxLeadingCRLF = 16       // bytes of empty lines before a request line
)

// span is a slice of a head buffer, by offsets, so that a parsed head
// holds no pointers and costs no allocation.
type span struct{ s, e int32 }

func (p span) of(b []byte) []byte { return b[p.s:p.e] }
func (p span) n() int             { return int(p.e - p.s) }

// kind classifies the header fields the proxy acts on.
type kind uint8

const (
	kOther kind = iota
	kHost
	kContentLength
	kTransferEncoding
	kConnection
	kKeepAlive
	kProxyConnection
	kTE
	kUpgrade
	kExpect
	kCookie
	kXFF
	kXFProto
	kXFHost
	kSetCookie
)

// field is one header field line.
type field struct {
	name, value span // value without surrounding whitespace
	kind        kind
	hop         bool // named in Connection: not forwarded (RFC 9110 §7.6.1)
}

// tchar is RFC 9110 §5.6.2's token characters.
var tchar = func() (t [256]bool) {
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for c := 'a'; c <= 'z'; c++ {
		t[c] = true
		t[c-'a'+'A'] = true
	}
	for _, c := range "!#$%&'*+-.^_`|~" {
		t[c] = true
	}
	return t
}()

// valueOK reports the octets a field value may hold (RFC 9110 §5.5:
// VCHAR, SP, HTAB and obs-text). NUL, CR, LF, DEL and other controls are
// refused: recipients disagree on what they mean.
var valueOK = func() (t [256]bool) {
	for c := 0x20; c < 0x100; c++ {
		t[c] = c != 0x7f
	}
	t['\t'] = true
	return t
}()

// hostOK is what a Host value may hold: RFC 3986 reg-name, IP-literal and
// port characters.
var hostOK = func() (t [256]bool) {
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for c := 'a'; c <= 'z'; c++ {
		t[c] = true
		t[c-'a'+'A'] = true
	}
	for _, c := range "-._~!$&'()*+,;=:%[]" {
		t[c] = true
	}
	return t
}()

// lower folds an ASCII letter to lower case.
func lower(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

// eqFold reports whether b equals the lower-case ASCII string s, ignoring
// case.
func eqFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := 0; i < len(b); i++ {
		if lower(b[i]) != s[i] {
			return false
		}
	}
	return true
}

// eqFoldBytes reports whether a and b are equal ignoring ASCII case.
func eqFoldBytes(a, b []byte) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		if lower(a[i]) != lower(b[i]) {
			return false
		}
	}
	return true
}

// fieldKind classifies a field name.
func fieldKind(name []byte) kind {
	switch len(name) {
	case 2:
		if eqFold(name, "te") {
			return kTE
		}
	case 4:
		if eqFold(name, "host") {
			return kHost
		}
	case 6:
		switch {
		case eqFold(name, "cookie"):
			return kCookie
		case eqFold(name, "expect"):
			return kExpect
		}
	case 7:
		if eqFold(name, "upgrade") {
			return kUpgrade
		}
	case 10:
		switch {
		case eqFold(name, "connection"):
			return kConnection
		case eqFold(name, "keep-alive"):
			return kKeepAlive
		case eqFold(name, "set-cookie"):
			return kSetCookie
		}
	case 14:
		if eqFold(name, "content-length") {
			return kContentLength
		}
	case 15:
		if eqFold(name, "x-forwarded-for") {
			return kXFF
		}
	case 16:
		switch {
		case eqFold(name, "proxy-connection"):
			return kProxyConnection
		case eqFold(name, "x-forwarded-host"):
			return kXFHost
		}
	case 17:
		switch {
		case eqFold(name, "transfer-encoding"):
			return kTransferEncoding
		case eqFold(name, "x-forwarded-proto"):
			return kXFProto
		}
	}
	return kOther
}

// headScanner finds where a header section ends, across reads: scan looks
// at each byte once however the head arrives, so a client that sends a
// byte at a time costs no more than one that sends the head whole.
type headScanner struct {
	resp  bool // a response: allow maxRespFields
	pos   int  // bytes already scanned
	line  int  // start of the current line
	lines int  // complete non-empty lines so far
}

// scan reports the length of the head once b holds all of it (through the
// empty line), 0 while more is needed, or an error: a bare LF, a request
// line or head over the limits, too many fields. Every LF the scanner
// passes is preceded by CR.
func (s *headScanner) scan(b []byte) (int, error) {
	for {
		i := bytes.IndexByte(b[s.pos:], '\n')
		if i < 0 {
			s.pos = len(b)
			if s.lines == 0 && len(b)-s.line > maxRequestLine {
				return 0, errURITooLong
			}
			if len(b) > maxHeadBytes {
				return 0, errHeadTooLarge
			}
			return 0, nil
		}
		lf := s.pos + i
		if lf == 0 || b[lf-1] != '\r' {
			return 0, errBareLF
		}
		n := lf - 1 - s.line // line length without CRLF
		s.pos = lf + 1
		if n < 0 { // "\n" right after the previous line's LF: "\r" was the previous LF's
			return 0, errBareLF
		}
		switch {
		case n == 0 && s.lines == 0:
			// RFC 9112 §2.2: ignore empty lines before the request line.
			if s.pos > maxLeadingCRLF {
				return 0, errRequestLine
			}
			s.line = s.pos
			continue
		case n == 0:
			if s.pos > maxHeadBytes {
				return 0, errHeadTooLarge
			}
			return s.pos, nil
		case s.lines == 0 && n > maxRequestLine:
			return 0, errURITooLong
		}
		s.lines++
		if s.lines > maxFields+1 && (!s.resp || s.lines > maxRespFields+1) {
			return 0, errTooManyFields
		}
		if s.pos > maxHeadBytes {
			return 0, errHeadTooLarge
		}
		s.line = s.pos
	}
}

// nextLine returns the line of b starting at off, without its CRLF, and the
// offset after it. ok is false when no CRLF-terminated line starts at off.
func nextLine(b []byte, off int) (line span, next int, err error) {
	i := bytes.IndexByte(b[off:], '\n')
	if i < 0 {
		return span{}, 0, errIncomplete
	}
	lf := off + i
	if lf == off || b[lf-1] != '\r' {
		return span{}, 0, errBareLF
	}
	return span{int32(off), int32(lf - 1)}, lf + 1, nil
}

// parseField parses one header field line (RFC 9112 §5): a token, a colon
// with no whitespace before it, and a value of valueOK octets with the
// surrounding whitespace trimmed. A line starting with whitespace is an
// obsolete fold (§5.2), refused.
func parseField(b []byte, l span) (field, error) {
	s, e := int(l.s), int(l.e)
	if b[s] == ' ' || b[s] == '\t' {
		return field{}, errObsFold
	}
	i := s
	for i < e && tchar[b[i]] {
		i++
	}
	if i == s || i == e || b[i] != ':' {
		if i < e && b[i] == '\r' {
			return field{}, errBareCR
		}
		return field{}, errFieldName
	}
	f := field{name: span{int32(s), int32(i)}}
	i++
	for i < e && (b[i] == ' ' || b[i] == '\t') {
		i++
	}
	vs := i
	for ; i < e; i++ {
		if !valueOK[b[i]] {
			if b[i] == '\r' {
				return field{}, errBareCR
			}
			return field{}, errFieldValue
		}
	}
	for e > vs && (b[e-1] == ' ' || b[e-1] == '\t') {
		e--
	}
	f.value = span{int32(vs), int32(e)}
	f.kind = fieldKind(f.name.of(b))
	return f, nil
}

// listElems calls fn with each non-empty element of a comma-separated list
// value (RFC 9110 §5.6.1), trimmed of whitespace, until fn returns false.
func listElems(v []byte, fn func([]byte) bool) {
	for len(v) > 0 {
		var el []byte
		if i := bytes.IndexByte(v, ','); i >= 0 {
			el, v = v[:i], v[i+1:]
		} else {
			el, v = v, nil
		}
		for len(el) > 0 && (el[0] == ' ' || el[0] == '\t') {
			el = el[1:]
		}
		for len(el) > 0 && (el[len(el)-1] == ' ' || el[len(el)-1] == '\t') {
			el = el[:len(el)-1]
		}
		if len(el) > 0 && !fn(el) {
			return
		}
	}
}

// isToken reports whether b is a non-empty token.
func isToken(b []byte) bool {
	if len(b) == 0 {
		return false
	}
	for _, c := range b {
		if !tchar[c] {
			return false
		}
	}
	return true
}

// parseLength parses a Content-Length value: 1*DIGIT, or a list of equal
// values ("42, 42", RFC 9110 §8.6). It returns -1 for anything else,
// including values over 2^53 (no body is that long; the cap keeps the
// arithmetic far from overflow).
func parseLength(v []byte) int64 {
	n := int64(-2)
	ok := true
	listElems(v, func(el []byte) bool {
		var x int64
		for _, c := range el {
			if c < '0' || c > '9' || x > 1<<53 {
				ok = false
				return false
			}
			x = x*10 + int64(c-'0')
		}
		if x > 1<<53 || (n != -2 && x != n) {
			ok = false
			return false
		}
		n = x
		return true
	})
	if !ok || n < 0 || len(v) == 0 {
		return -1
	}
	return n
}

// teState accumulates Transfer-Encoding fields (RFC 9112 §6.1): chunked
// must be the final coding and appear once.
type teState struct {
	seen    bool
	chunked bool // chunked was the last coding so far
	other   bool // a coding other than chunked
	bad     bool // chunked followed by another coding, or twice, or junk
}

func (t *teState) add(v []byte) {
	t.seen = true
	listElems(v, func(el []byte) bool {
		name := el
		if i := bytes.IndexByte(el, ';'); i >= 0 {
			name = bytes.TrimRight(el[:i], " \t")
		}
		if !isToken(name) || t.chunked {
			t.bad = true
			return false
		}
		if eqFold(name, "chunked") {
			t.chunked = true
		} else {
			t.other = true
		}
		return true
	})
}

// connOpts are the options of the Connection fields of a message (RFC
// 9110 §7.6.1).
type connOpts struct {
	close, keepAlive, upgrade bool
	names                     [maxConnTokens]span // other options: fields to drop
	n                         int
}

// add records the options of one Connection value v, a subslice of b. It
// reports false for a malformed value or too many options.
func (o *connOpts) add(b, v []byte) bool {
	ok := true
	listElems(v, func(el []byte) bool {
		switch {
		case !isToken(el):
			ok = false
		case eqFold(el, "close"):
			o.close = true
		case eqFold(el, "keep-alive"):
			o.keepAlive = true // a Keep-Alive field is dropped anyway
		case eqFold(el, "upgrade"):
			o.upgrade = true
		case o.n == maxConnTokens:
			ok = false
		default:
			o.names[o.n] = spanOf(b, el)
			o.n++
		}
		return ok
	})
	return ok
}

// mark flags the fields named by the options as hop-by-hop, except those
// that frame or route the message: a sender must not be able to strip
// them from what the next hop sees.
func (o *connOpts) mark(b []byte, fields []field) {
	if o.n == 0 {
		return
	}
	for i := range fields {
		f := &fields[i]
		switch f.kind {
		case kHost, kContentLength, kTransferEncoding:
			continue
		}
		name := f.name.of(b)
		for _, c := range o.names[:o.n] {
			if eqFoldBytes(name, c.of(b)) {
				f.hop = true
				break
			}
		}
	}
}

// spanOf returns the span of sub, a subslice of b.
func spanOf(b, sub []byte) span {
	off := int32(cap(b) - cap(sub))
	return span{off, off + int32(len(sub))}
}
