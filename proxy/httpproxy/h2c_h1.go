package httpproxy

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"lbd/proxy/balance"
)

// handleH2C forwards an HTTP/1.1 client's request to an h2c pool and
// writes the response. It reports whether the connection can serve
// another request.
func (c *conn) handleH2C(st *state, key balance.Key) bool {
	h := &c.head
	x := &c.x
	req := c.h2cRequest(st)
	var body *h1Body
	if h.hasBody() {
		if h.expect100 && c.m.minor == 1 {
			// The proxy answers Expect itself (RFC 9110 §10.1.1): the
			// backend gets the body without being asked.
			c.getOut()
			c.out = append(c.out[:0], "HTTP/1.1 100 Continue\r\n\r\n"...)
			if c.flush() != nil {
				return false
			}
		}
		body = &h1Body{c: c, left: h.contentLength}
		if h.chunked {
			c.ck = chunkParser{}
			body.left = -1
		}
		req.ContentLength = h.contentLength
	} else {
		req.Body = http.NoBody
	}
	var src bodySource
	if body != nil {
		src = body
	}
	resp, cancel, err := x.h2cRoundTrip(context.Background(), key, req, src, c.m.idem && body == nil)
	if err != nil {
		all := body == nil || body.detach()
		if body != nil {
			x.bodyIn = body.count()
		}
		status := statusFor(err)
		switch {
		case body != nil && errors.Is(body.failure(), errChunk):
			status = 400
		case status == 503:
			c.f.noBack.Add(1)
		}
		c.f.log.Debug("request failed", "client", c.client, "request_id", string(c.reqID[:c.reqIDLen]), "err", err)
		return c.refuse(st, status, !all)
	}
	idle := newIdleGuard(st.idle, cancel)
	if body != nil {
		body.idle.Store(idle)
	}
	keep, err := c.respondH2C(st, resp, idle)
	idle.stop()
	resp.Body.Close()
	all := body == nil || body.detach()
	if body != nil {
		x.bodyIn = body.count()
	}
	x.sent, x.recv = x.bodyIn, x.bodyOut // the backend's traffic counters
	x.finish(false)
	if err != nil {
		c.f.log.Debug("response failed", "client", c.client, "request_id", string(c.reqID[:c.reqIDLen]), "err", err)
		return false
	}
	return keep && all
}

// h2cRequest builds the request an h2c backend gets from the request
// head: the client's fields less the hop-by-hop ones (TE only as
// "trailers"), with X-Forwarded-* and the request id added.
func (c *conn) h2cRequest(st *state) *http.Request {
	h := &c.head
	b := h.buf
	hdr := make(http.Header, len(h.fields)+4)
	var xff []string
	for i := range h.fields {
		f := &h.fields[i]
		if f.hop {
			continue
		}
		switch f.kind {
		case kConnection, kKeepAlive, kProxyConnection, kTransferEncoding, kContentLength, kUpgrade,
			kHost, kXFProto, kXFHost, kExpect:
			continue
		case kTE:
			if teTrailers(string(f.value.of(b))) {
				hdr["Te"] = []string{"trailers"}
			}
			continue
		case kXFF:
			xff = append(xff, string(f.value.of(b)))
			continue
		case kOther:
			if f.name.n() == len(st.reqIDLower) && eqFold(f.name.of(b), st.reqIDLower) {
				continue
			}
		}
		k := http.CanonicalHeaderKey(string(f.name.of(b)))
		if k == "Trailer" {
			continue // request trailers are not forwarded from HTTP/1.1
		}
		hdr[k] = append(hdr[k], string(f.value.of(b)))
	}
	host := string(h.host.of(b))
	addForwarded(hdr, xff, string(c.clientStr[:c.clientLen]), st.proto, host, st, string(c.reqID[:c.reqIDLen]))
	return &http.Request{
		Method: string(h.method.of(b)),
		URL:    h2cURL(string(h.path.of(b))),
		Host:   host,
		Header: hdr,
	}
}

// respondH2C writes an h2c backend's response to an HTTP/1.1 client,
// streaming the body as it comes (each read is written at once: gRPC and
// server-sent events need it), with the trailers at the end of a chunked
// body. It reports whether the connection can be kept.
func (c *conn) respondH2C(st *state, resp *http.Response, idle *idleGuard) (bool, error) {
	x := &c.x
	x.status = resp.StatusCode
	keep := !c.m.close && !c.f.closingNow()
	noBody := c.m.head || resp.StatusCode == 204 || resp.StatusCode == 304
	var mode uint8
	switch {
	case noBody:
		mode = bodyNone
	case resp.ContentLength >= 0 && len(resp.Trailer) == 0:
		mode = bodyLength
	case c.m.minor == 1:
		mode = bodyChunked
	default:
		mode, keep = bodyClose, false
	}
	c.getOut()
	c.out = c.appendH2CResponseHead(c.out[:0], st, resp, mode, keep)
	if err := c.flush(); err != nil {
		return false, err
	}
	if mode == bodyNone {
		return keep, nil
	}
	bufp := getLarge()
	defer putBuf(bufp)
	buf := (*bufp)[:largeBufSize-64]
	var got int64
	for {
		n, err := resp.Body.Read(buf)
		if n > 0 {
			if idle != nil {
				idle.touch()
			}
			got += int64(n)
			var werr error
			if mode == bodyChunked {
				c.out = appendChunkHeader(c.out[:0], n)
				c.out = append(c.out, buf[:n]...)
				c.out = append(c.out, "\r\n"...)
				werr = c.flush()
			} else {
				werr = c.writeClient(buf[:n])
			}
			if werr != nil {
				return false, werr
			}
			x.bodyOut += uint64(n)
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return false, err
		}
	}
	if mode == bodyLength && got != resp.ContentLength {
		return false, errBackendBodyRead
	}
	if mode == bodyChunked {
		c.out = appendFields(append(c.out[:0], "0\r\n"...), resp.Trailer, nil, "")
		c.out = append(c.out, "\r\n"...)
		return keep, c.flush()
	}
	return keep, nil
}

func (c *conn) appendH2CResponseHead(dst []byte, st *state, resp *http.Response, mode uint8, keep bool) []byte {
	dst = append(dst, "HTTP/1.1 "...)
	dst = strconv.AppendInt(dst, int64(resp.StatusCode), 10)
	dst = append(dst, ' ')
	if t := http.StatusText(resp.StatusCode); t != "" {
		dst = append(dst, t...)
	} else {
		dst = append(dst, "Status"...)
	}
	dst = append(dst, "\r\n"...)
	dst = appendFields(dst, resp.Header, hopResponse, http.CanonicalHeaderKey(st.reqID))
	switch {
	case mode == bodyChunked:
		dst = append(dst, "Transfer-Encoding: chunked\r\n"...)
	case resp.ContentLength >= 0 && (mode == bodyLength || c.m.head):
		dst = append(dst, "Content-Length: "...)
		dst = strconv.AppendInt(dst, resp.ContentLength, 10)
		dst = append(dst, "\r\n"...)
	}
	switch {
	case !keep:
		dst = append(dst, "Connection: close\r\n"...)
	case c.m.minor == 0:
		dst = append(dst, "Connection: keep-alive\r\n"...)
	}
	dst = appendRequestIDField(dst, st, c.reqID[:c.reqIDLen])
	if tok, ok := c.x.setCookie(); ok {
		dst = c.x.tgt.sticky.appendSetCookie(dst, tok, c.secure)
	}
	return append(dst, "\r\n"...)
}

// h1Body is an HTTP/1.1 client's request body as an h2c transport reads
// it, from another goroutine: Content-Length or chunked (decoded), read
// from what the connection buffered and then from the socket. When the
// exchange ends, detach stops it for good, before the connection reads
// its next request.
type h1Body struct {
	c    *conn
	left int64 // Content-Length bytes not yet read; -1: chunked
	idle atomic.Pointer[idleGuard]

	mu  sync.Mutex // one Read at a time; detach waits for it
	n   uint64     // bytes read
	err error      // sticky failure

	cmu     sync.Mutex // orders aborting against a Read setting its deadline
	aborted bool

	eof atomic.Bool
}

func (b *h1Body) Read(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.eof.Load() {
		return 0, io.EOF
	}
	if b.err != nil {
		return 0, b.err
	}
	c := b.c
	for {
		b.cmu.Lock()
		aborted := b.aborted
		b.cmu.Unlock()
		if aborted {
			b.err = errBodyGone
			return 0, b.err
		}
		n, err := b.fromBuffer(p)
		if err != nil {
			b.err = err
			return 0, err
		}
		if n > 0 || b.eof.Load() {
			b.n += uint64(n)
			if g := b.idle.Load(); g != nil && n > 0 {
				g.touch()
			}
			if n == 0 {
				return 0, io.EOF
			}
			return n, nil
		}
		b.cmu.Lock()
		if b.aborted {
			b.cmu.Unlock()
			continue
		}
		if idle := c.x.st.idle; idle > 0 {
			c.nc.SetReadDeadline(time.Now().Add(idle))
		} else {
			c.nc.SetReadDeadline(time.Time{})
		}
		b.cmu.Unlock()
		if b.left > 0 && c.in.len() == 0 {
			// Content-Length: straight into p, never past the body.
			m, err := c.nc.Read(p[:min(int64(len(p)), b.left)])
			b.left -= int64(m)
			b.n += uint64(m)
			if b.left == 0 {
				b.eof.Store(true)
			}
			if m > 0 {
				if g := b.idle.Load(); g != nil {
					g.touch()
				}
				return m, nil
			}
			if err == nil {
				continue
			}
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			b.err = err
			return 0, err
		}
		if m, err := c.in.fill(c.nc); m == 0 && err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			b.err = err
			return 0, err
		}
	}
}

// fromBuffer copies body bytes the connection has buffered into p.
func (b *h1Body) fromBuffer(p []byte) (int, error) {
	c := b.c
	if b.left >= 0 {
		k := int(min(int64(c.in.len()), b.left, int64(len(p))))
		copy(p, c.in.data()[:k])
		c.in.consume(k)
		b.left -= int64(k)
		if b.left == 0 {
			b.eof.Store(true)
		}
		return k, nil
	}
	n := 0
	for c.in.len() > 0 && !c.ck.done() && n < len(p) {
		data := c.in.data()
		m, ds, err := c.ck.next(data[:min(len(data), len(p)-n)])
		if err != nil {
			return 0, err
		}
		n += copy(p[n:], data[ds:m])
		c.in.consume(m)
	}
	if c.ck.done() {
		b.eof.Store(true)
	}
	return n, nil
}

// abort gives the body up: a Read in progress returns at once. The body
// is then incomplete, and the connection is not reused.
func (b *h1Body) abort() {
	b.cmu.Lock()
	b.aborted = true
	if !b.eof.Load() {
		b.c.nc.SetReadDeadline(aLongTimeAgo)
	}
	b.cmu.Unlock()
}

func (b *h1Body) done() bool { return b.eof.Load() }

func (b *h1Body) count() uint64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.n
}

// failure returns the error that ended the body early, if any.
func (b *h1Body) failure() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.err
}

// detach stops the body for good and waits for a Read in progress. It
// reports whether the whole body was read.
func (b *h1Body) detach() bool {
	b.abort()
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.eof.Load()
}
