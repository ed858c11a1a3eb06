package httpproxy

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"lbd/health"
	"lbd/proxy"
	"lbd/proxy/balance"
)

// HTTP/2 cleartext connections to backends (protocol = "h2c"): HTTP/2
// with prior knowledge (RFC 9113 §3.3), as gRPC servers speak it.
// Requests are multiplexed over few connections per backend, kept by a
// net/http Transport per backend; its connections are dialled here, so
// that draining closes them and connect failures count against the
// backend. Picking a backend, least_conn's counts, max_connections and
// retries work per request as for HTTP/1.1 backends.
const (
	h2cIdleTimeout = 30 * time.Second // an h2c connection without streams is closed after this
	h2cPingAfter   = 30 * time.Second // a connection silent this long is pinged
	h2cPingTimeout = 15 * time.Second // and closed when the ping is not answered
)

var errBodyGone = errors.New("httpproxy: request body no longer available")

// h2cBackend is the transport to one backend of an h2c pool.
type h2cBackend struct {
	b       *proxy.Backend
	tr      *http.Transport
	timeout atomic.Int64 // connect_timeout, nanoseconds
	hdr     []byte       // PROXY header each connection starts with; nil: none
	conns   atomic.Int64 // connections open
}

func newH2CBackend(b *proxy.Backend, timeout time.Duration, proxyHdr []byte) *h2cBackend {
	h := &h2cBackend{b: b, hdr: proxyHdr}
	h.timeout.Store(int64(timeout))
	var p http.Protocols
	p.SetUnencryptedHTTP2(true)
	h.tr = &http.Transport{
		Protocols:          &p,
		DialContext:        h.dial,
		DisableCompression: true, // bodies pass as they are
		IdleConnTimeout:    h2cIdleTimeout,
		HTTP2:              &http.HTTP2Config{SendPingTimeout: h2cPingAfter, PingTimeout: h2cPingTimeout},
	}
	return h
}

// dialError is a connection to a backend that could not be made: the
// request did not leave, so it may go to another backend.
type dialError struct{ err error }

func (e *dialError) Error() string { return e.err.Error() }
func (e *dialError) Unwrap() error { return e.err }

// dial connects to the backend (the address the transport asks for is
// the backend's own) and tracks the connection, so that the end of a
// drain closes it.
func (h *h2cBackend) dial(ctx context.Context, _, _ string) (net.Conn, error) {
	d := net.Dialer{Timeout: time.Duration(h.timeout.Load()), KeepAlive: 30 * time.Second}
	c, err := d.DialContext(ctx, "tcp", h.b.Address())
	if err != nil {
		return nil, &dialError{err}
	}
	if h.hdr != nil {
		c.SetWriteDeadline(time.Now().Add(time.Duration(h.timeout.Load())))
		if _, err := c.Write(h.hdr); err != nil {
			c.Close()
			return nil, &dialError{err}
		}
		c.SetWriteDeadline(time.Time{})
	}
	tc := &trackedConn{Conn: c, h: h}
	h.conns.Add(1)
	h.b.Track(tc)
	return tc, nil
}

// trackedConn is an h2c connection the backend tracks until it closes.
type trackedConn struct {
	net.Conn
	h    *h2cBackend
	once sync.Once
}

func (c *trackedConn) Close() error {
	err := net.ErrClosed
	c.once.Do(func() {
		err = c.Conn.Close()
		c.h.b.Untrack(c)
		c.h.conns.Add(-1)
	})
	return err
}

// h2cPool holds a frontend's h2c transports, one per backend, across
// reloads: a backend that stays keeps its connections.
type h2cPool struct {
	mu      sync.Mutex // guards the fields
	live    map[*proxy.Backend]*h2cBackend
	retired []*h2cBackend // out of the configuration, finishing their streams
	closed  bool
}

func newH2CPool() *h2cPool {
	return &h2cPool{live: make(map[*proxy.Backend]*h2cBackend)}
}

// backends returns the transports of pool's backends, made when missing.
func (p *h2cPool) backends(pool *proxy.Pool, timeout time.Duration) map[*proxy.Backend]*h2cBackend {
	p.mu.Lock()
	defer p.mu.Unlock()
	m := make(map[*proxy.Backend]*h2cBackend, len(pool.Backends()))
	for _, b := range pool.Backends() {
		h := p.live[b]
		if h == nil {
			h = newH2CBackend(b, timeout, nil)
			p.live[b] = h
		} else {
			h.timeout.Store(int64(timeout))
		}
		m[b] = h
	}
	return m
}

// retain retires the transports of backends that st no longer uses:
// their idle connections close now, the others when their streams end.
func (p *h2cPool) retain(st *state) {
	used := map[*proxy.Backend]bool{}
	for _, t := range st.targets {
		if t != nil {
			for b := range t.h2c {
				used[b] = true
			}
		}
	}
	p.mu.Lock()
	var gone []*h2cBackend
	for b, h := range p.live {
		if !used[b] {
			delete(p.live, b)
			p.retired = append(p.retired, h)
			gone = append(gone, h)
		}
	}
	p.mu.Unlock()
	for _, h := range gone {
		h.tr.CloseIdleConnections()
	}
}

// reap closes the idle connections of backends out of rotation (down,
// draining, disabled) and forgets retired transports with no connection
// left. The backend connection pool's reaper calls it.
func (p *h2cPool) reap() {
	p.mu.Lock()
	var idle []*h2cBackend
	for b, h := range p.live {
		if !b.Usable() && h.conns.Load() > 0 {
			idle = append(idle, h)
		}
	}
	keep := p.retired[:0]
	for _, h := range p.retired {
		if h.conns.Load() > 0 {
			keep = append(keep, h)
			idle = append(idle, h)
		}
	}
	clear(p.retired[len(keep):])
	p.retired = keep
	p.mu.Unlock()
	for _, h := range idle {
		h.tr.CloseIdleConnections()
	}
}

// close closes every connection without a stream; the frontend calls it
// once its requests have ended.
func (p *h2cPool) close() {
	p.mu.Lock()
	p.closed = true
	all := append([]*h2cBackend(nil), p.retired...)
	for _, h := range p.live {
		all = append(all, h)
	}
	p.mu.Unlock()
	for _, h := range all {
		h.tr.CloseIdleConnections()
	}
}

// bodySource is a request body as the client sends it.
type bodySource interface {
	io.Reader
	abort()        // gives the body up, unblocking a Read in progress
	done() bool    // read to its end
	count() uint64 // bytes read
}

// tryBody is the request body as one try of a request sees it: closing
// it (the transport does, even when it could not connect) gives the
// source up only if the try began reading it; otherwise the next try may
// still send it.
type tryBody struct {
	src       bodySource
	attempted atomic.Bool
	closed    atomic.Bool
}

func (t *tryBody) Read(p []byte) (int, error) {
	t.attempted.Store(true)
	if t.closed.Load() {
		return 0, errBodyGone
	}
	return t.src.Read(p)
}

func (t *tryBody) Close() error {
	if !t.closed.Swap(true) && t.attempted.Load() && !t.src.done() {
		t.src.abort()
	}
	return nil
}

// idleGuard cancels an exchange when no byte went either way for d.
type idleGuard struct {
	last    atomic.Int64 // unix nanoseconds of the last activity
	d       time.Duration
	t       *time.Timer
	cancel  context.CancelFunc
	stopped atomic.Bool
	fired   atomic.Bool
}

func newIdleGuard(d time.Duration, cancel context.CancelFunc) *idleGuard {
	if d <= 0 {
		return nil
	}
	g := &idleGuard{d: d, cancel: cancel}
	g.touch()
	g.t = time.AfterFunc(d, g.check)
	return g
}

func (g *idleGuard) touch() { g.last.Store(time.Now().UnixNano()) }

func (g *idleGuard) check() {
	if g.stopped.Load() {
		return
	}
	idle := time.Duration(time.Now().UnixNano() - g.last.Load())
	if idle >= g.d {
		g.fired.Store(true)
		g.cancel()
		return
	}
	g.t.Reset(g.d - idle)
}

func (g *idleGuard) stop() {
	if g != nil {
		g.stopped.Store(true)
		g.t.Stop()
	}
}

// h2cBackendFor returns the transport to b: the client connection's own
// when the frontend sends PROXY headers, else the shared one.
func (x *exchange) h2cBackendFor(b *proxy.Backend) *h2cBackend {
	if x.priv != nil {
		return x.priv.h2cBackend(b, x.tgt.connectTimeout)
	}
	if h := x.tgt.h2c[b]; h != nil {
		return h
	}
	// A backend added to the pool after the target was built (cannot
	// happen today: pools change only by reload, which rebuilds targets).
	return x.f.h2c.backends(x.tgt.pool, x.tgt.connectTimeout)[b]
}

// h2cRoundTrip sends req to a backend of the h2c pool and returns its
// response head, with the cancel function that ends the exchange (the
// caller calls it when the response is done). It retries as roundTrip
// does: a backend that cannot be reached is excluded and another tried;
// a request that failed otherwise is retried only if it is replayable
// and no byte of its body was read.
func (x *exchange) h2cRoundTrip(ctx context.Context, key balance.Key, req *http.Request, body bodySource, replayable bool) (*http.Response, context.CancelFunc, error) {
	var lastErr error
	for try := 0; ; try++ {
		b := x.pick(key)
		if b == nil {
			if lastErr != nil {
				return nil, nil, lastErr
			}
			return nil, nil, errNoBackend
		}
		resp, cancel, retry, err := x.h2cTry(ctx, b, req, body, replayable)
		if err == nil {
			x.b = b
			x.picked(b)
			return resp, cancel, nil
		}
		b.Release()
		lastErr = err
		x.f.log.Debug("backend failed", "backend", b.Address(), "err", err, "retry", retry && try < x.tgt.retries)
		if !retry || try >= x.tgt.retries || ctx.Err() != nil {
			return nil, nil, err
		}
	}
}

func (x *exchange) h2cTry(ctx context.Context, b *proxy.Backend, req *http.Request, body bodySource, replayable bool) (resp *http.Response, cancel context.CancelFunc, retry bool, err error) {
	h := x.h2cBackendFor(b)
	tctx, cancel := context.WithCancel(ctx)
	x.setCancel(&cancel)
	var timedOut atomic.Bool
	var timer *time.Timer
	if rt := x.tgt.readTimeout; rt > 0 {
		timer = time.AfterFunc(rt, func() { timedOut.Store(true); cancel() })
	}
	start := time.Now()
	if le := x.le; le != nil {
		tctx = httptrace.WithClientTrace(tctx, &httptrace.ClientTrace{GotConn: func(httptrace.GotConnInfo) {
			le.connect = time.Now().UnixNano() - le.start
		}})
	}
	r := req.WithContext(tctx)
	u := *req.URL
	u.Host = b.Address()
	r.URL = &u
	var tb *tryBody
	if body != nil {
		tb = &tryBody{src: body}
		r.Body = tb
	}
	resp, err = h.tr.RoundTrip(r)
	now := time.Now()
	if timer != nil {
		timer.Stop()
	}
	if err == nil {
		b.CountConnect(now.Sub(start))
		if resp.StatusCode >= 500 {
			b.Report(health.Status5xx)
		} else {
			b.Report(health.Success)
		}
		if x.le != nil {
			x.le.firstByte = now.UnixNano() - x.le.start
		}
		return resp, cancel, false, nil
	}
	cancel()
	x.setCancel(nil)
	var de *dialError
	switch {
	case timedOut.Load():
		b.CountFailure()
		b.Report(health.Timeout)
		return nil, nil, false, &backendError{b.Address(), "read", errBackendTimeout}
	case errors.As(err, &de):
		b.CountFailure()
		b.Report(health.ConnectError)
		return nil, nil, true, &backendError{b.Address(), "connect", de.err}
	case ctx.Err() != nil: // the client left or the frontend cut it
		return nil, nil, false, &backendError{b.Address(), "request", err}
	}
	b.CountFailure()
	b.Report(health.Reset)
	return nil, nil, replayable && (tb == nil || !tb.attempted.Load()), &backendError{b.Address(), "request", err}
}

// setCancel publishes the function that cancels the exchange in flight,
// so that Close can cut it.
func (x *exchange) setCancel(c *context.CancelFunc) {
	x.stop.Store(c)
	if c != nil && x.f.cut.Load() {
		(*c)()
	}
}

// h2cURL is the URL of a request to an h2c backend: the origin-form
// target pq as the client sent it. The host is set per backend.
func h2cURL(pq string) *url.URL {
	u := &url.URL{Scheme: "http"}
	path, query, hasQuery := strings.Cut(pq, "?")
	u.RawQuery, u.ForceQuery = query, hasQuery && query == ""
	if strings.HasPrefix(path, "//") {
		// Opaque would read as an authority; Path and RawPath keep it.
		if p, err := url.PathUnescape(path); err == nil {
			u.Path, u.RawPath = p, path
			return u
		}
	}
	u.Opaque = path
	return u
}

// hopH2C are the fields that do not go from a client to an h2c backend:
// hop-by-hop ones (RFC 9110 §7.6.1, RFC 9113 §8.2.2), those the proxy
// writes itself, and Expect, which the proxy answers.
var hopH2C = map[string]bool{
	"Connection": true, "Keep-Alive": true, "Proxy-Connection": true, "Te": true,
	"Transfer-Encoding": true, "Upgrade": true, "Host": true, "Content-Length": true,
	"X-Forwarded-For": true, "X-Forwarded-Proto": true, "X-Forwarded-Host": true,
	"Expect": true, "Trailer": true,
}

// hopResponse are the response fields a backend's response loses on the
// way to the client.
var hopResponse = map[string]bool{
	"Connection": true, "Keep-Alive": true, "Proxy-Connection": true, "Te": true,
	"Transfer-Encoding": true, "Upgrade": true, "Content-Length": true, "Trailer": true,
}

// teTrailers reports whether a TE value names "trailers", the only TE an
// HTTP/2 request may carry (RFC 9113 §8.2.2); gRPC needs it.
func teTrailers(v string) bool {
	for el := range strings.SplitSeq(v, ",") {
		el, _, _ = strings.Cut(el, ";")
		if strings.EqualFold(strings.TrimSpace(el), "trailers") {
			return true
		}
	}
	return false
}

// addForwarded adds X-Forwarded-For (the client's values, then its
// address), X-Forwarded-Proto, X-Forwarded-Host and the request id.
func addForwarded(hdr http.Header, xff []string, client, proto, host string, st *state, id string) {
	var sb strings.Builder
	for _, v := range xff {
		if v = strings.TrimSpace(clean(v)); v != "" {
			sb.WriteString(v)
			sb.WriteString(", ")
		}
	}
	sb.WriteString(client)
	hdr["X-Forwarded-For"] = []string{sb.String()}
	hdr["X-Forwarded-Proto"] = []string{proto}
	if host != "" {
		hdr["X-Forwarded-Host"] = []string{clean(host)}
	}
	if st.reqID != "" {
		hdr[http.CanonicalHeaderKey(st.reqID)] = []string{id}
	}
	if _, ok := hdr["User-Agent"]; !ok {
		hdr["User-Agent"] = nil // the transport adds none
	}
}
