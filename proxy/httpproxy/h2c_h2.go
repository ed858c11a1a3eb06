package httpproxy

import (
	"io"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"

	"lbd/proxy/balance"
)

// serveH2C forwards an HTTP/2 client's request to an h2c pool: one
// stream in, one stream out, bodies and trailers passed through as they
// come, so that gRPC streams (unary, server-stream, bidi) work end to
// end.
func (q *h2req) serveH2C(st *state, key balance.Key) {
	r, x := q.r, &q.x
	req := q.h2cRequest(st)
	var body *h2Body
	if r.Body != nil && r.Body != http.NoBody && r.ContentLength != 0 {
		body = &h2Body{r: r.Body}
		req.ContentLength = r.ContentLength
		if len(r.Trailer) > 0 {
			// Declared trailers; the server fills the values in before
			// the body's EOF, which is when the transport reads them.
			req.Trailer = r.Trailer
		}
	} else {
		req.Body = http.NoBody
	}
	var src bodySource
	if body != nil {
		src = body
	}
	idem := false
	switch r.Method {
	case "GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE":
		idem = true
	}
	resp, cancel, err := x.h2cRoundTrip(r.Context(), key, req, src, idem && body == nil)
	if err != nil {
		if body != nil {
			body.abort()
			x.bodyIn = body.count()
		}
		status := statusFor(err)
		if status == 503 {
			q.h.f.noBack.Add(1)
		}
		q.h.f.log.Debug("request failed", "client", q.h.client, "request_id", q.id, "err", err)
		q.refuse(st, status)
		return
	}
	idle := newIdleGuard(st.idle, cancel)
	if body != nil {
		body.idle.Store(idle)
	}
	err = q.respondH2C(st, resp, idle)
	idle.stop()
	resp.Body.Close()
	if body != nil {
		x.bodyIn = body.count()
	}
	x.sent, x.recv = x.bodyIn, x.bodyOut // the backend's traffic counters
	x.finish(false)
	if err != nil {
		q.h.f.log.Debug("response failed", "client", q.h.client, "request_id", q.id, "err", err)
		panic(http.ErrAbortHandler) // reset the stream: the response is incomplete
	}
}

// h2cRequest builds the request an h2c backend gets from an HTTP/2
// request: its fields less the connection-specific ones (TE only as
// "trailers"), with X-Forwarded-* and the request id added.
func (q *h2req) h2cRequest(st *state) *http.Request {
	r := q.r
	hdr := make(http.Header, len(r.Header)+4)
	reqID := http.CanonicalHeaderKey(st.reqID)
	for k, vs := range r.Header {
		switch {
		case k == "Te":
			for _, v := range vs {
				if teTrailers(v) {
					hdr["Te"] = []string{"trailers"}
				}
			}
			continue
		case hopH2C[k], k == reqID:
			continue
		}
		hdr[k] = vs
	}
	addForwarded(hdr, r.Header["X-Forwarded-For"], q.h.clientStr, st.proto, r.Host, st, q.id)
	return &http.Request{
		Method: r.Method,
		URL:    h2cURL(q.pathString()),
		Host:   r.Host,
		Header: hdr,
	}
}

// respondH2C streams an h2c backend's response to the client's stream:
// head, body (flushed as it comes) and trailers.
func (q *h2req) respondH2C(st *state, resp *http.Response, idle *idleGuard) error {
	x := &q.x
	x.status = resp.StatusCode
	hdr := q.w.Header()
	reqID := http.CanonicalHeaderKey(st.reqID)
	for k, vs := range resp.Header {
		if hopResponse[k] || k == reqID {
			continue
		}
		hdr[k] = vs
	}
	if cl := resp.Header["Content-Length"]; len(cl) == 1 && resp.ContentLength >= 0 && len(resp.Trailer) == 0 {
		hdr["Content-Length"] = []string{strconv.FormatInt(resp.ContentLength, 10)}
	}
	if st.reqID != "" {
		hdr[reqID] = []string{q.id}
	}
	if tok, ok := x.setCookie(); ok {
		q.addSetCookie(tok)
	}
	q.w.WriteHeader(resp.StatusCode)
	fl, _ := q.w.(http.Flusher)
	if fl != nil && resp.ContentLength != 0 {
		// A stream's head goes out before its first message. A response
		// that ended with its head (gRPC's trailers-only answer carries
		// grpc-status there) must stay one HEADERS frame.
		fl.Flush()
	}
	bufp := getLarge()
	defer putBuf(bufp)
	buf := *bufp
	for {
		n, err := resp.Body.Read(buf)
		if n > 0 {
			if idle != nil {
				idle.touch()
			}
			if _, werr := q.w.Write(buf[:n]); werr != nil {
				return errClientGone
			}
			if fl != nil {
				fl.Flush()
			}
			x.bodyOut += uint64(n)
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
	}
	for k, vs := range resp.Trailer {
		hdr[http.TrailerPrefix+k] = vs
	}
	return nil
}

// h2Body is an HTTP/2 client's request body as the h2c transport reads
// it.
type h2Body struct {
	r    io.ReadCloser
	idle atomic.Pointer[idleGuard]
	n    atomic.Uint64
	eof  atomic.Bool
	once sync.Once
}

func (b *h2Body) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	b.n.Add(uint64(n))
	if g := b.idle.Load(); n > 0 && g != nil {
		g.touch()
	}
	if err == io.EOF {
		b.eof.Store(true)
	}
	return n, err
}

func (b *h2Body) abort()        { b.once.Do(func() { b.r.Close() }) }
func (b *h2Body) done() bool    { return b.eof.Load() }
func (b *h2Body) count() uint64 { return b.n.Load() }
