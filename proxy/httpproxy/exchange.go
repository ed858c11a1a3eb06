package httpproxy

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"lbd/health"
	"lbd/proxy"
	"lbd/proxy/balance"
)

// exchange is one request's conversation with the backends: picking one,
// retrying, reading the response head and streaming the response body. It
// serves HTTP/1.1 and HTTP/2 clients alike.
type exchange struct {
	f   *Frontend
	st  *state
	tgt *target
	ex  balance.Exclude
	b   *proxy.Backend        // the backend answering, counted active until finish
	bc  *bconn                // its connection
	cur atomic.Pointer[bconn] // bc, for cutting from another goroutine
	// stop cancels an h2c exchange in flight, from another goroutine.
	stop atomic.Pointer[context.CancelFunc]
	// priv, when the frontend sends PROXY headers, holds the client
	// connection's own backend connections; nil: the shared pool.
	priv *privPool

	resp respHead // its fields are borrowed per request (fieldBufs)

	sent, recv uint64 // bytes to and from the backend

	// What the access log reports; le is nil when the frontend logs
	// nothing.
	le      *logEntry
	status  int    // answered to the client
	bodyIn  uint64 // request body bytes from the client
	bodyOut uint64 // response body bytes to the client

	tok      [64]byte // the client's sticky cookie value
	tokLen   int
	stickyOK bool   // the backend is the one the client's cookie names
	affKey   string // the request's key in the Affinity table (source_ip, header); "": none

	// The request body copy that runs while the response is awaited.
	copying  bool
	copyDone chan struct{} // receives one value when the copy ends
	copyErr  error         // set before copyDone
	copyAll  bool          // the whole request body was read from the client
	abort    func()        // unblocks the copy
}

func (x *exchange) init(f *Frontend) {
	x.f = f
	x.copyDone = make(chan struct{}, 1)
}

// reset prepares x for a new request.
func (x *exchange) reset(st *state) {
	x.st, x.tgt = st, nil
	x.ex = balance.Exclude{}
	x.b, x.bc = nil, nil
	x.sent, x.recv = 0, 0
	x.status, x.bodyIn, x.bodyOut = 0, 0, 0
	x.tokLen, x.stickyOK, x.affKey = 0, false, ""
	x.copying, x.copyErr, x.copyAll, x.abort = false, nil, false, nil
}

// setToken records the client's sticky cookie value.
func (x *exchange) setToken(v []byte) {
	if len(v) <= len(x.tok) {
		x.tokLen = copy(x.tok[:], v)
	}
}

// aim sends the exchange to tgt for request r, HTTP/1.1 or HTTP/2, and
// returns the balancing key: it reads the sticky cookie and the affinity
// key r carries for tgt.
func (x *exchange) aim(tgt *target, r reqView) balance.Key {
	x.tgt = tgt
	if x.le != nil {
		x.le.pool = tgt.name
	}
	if s := tgt.sticky; s != nil {
		if v, ok := r.cookie(s.cookie); ok {
			x.setToken(v)
		}
	}
	if a := tgt.affinity; a != nil {
		x.affKey = a.key(r)
	}
	return tgt.hash.key(r)
}

// pick returns a backend for the request, counted active: the one the
// sticky cookie names while it is usable, else the pool's choice.
func (x *exchange) pick(key balance.Key) *proxy.Backend {
	t := x.tgt
	if t.sticky != nil && x.tokLen > 0 && x.ex.Len() == 0 {
		if addr, ok := t.sticky.lookup(x.tok[:x.tokLen]); ok {
			if b := t.pool.Backend(addr); b != nil && b.Usable() && b.TryInc() {
				x.ex.Add(b.Backend)
				x.stickyOK = true
				return b
			}
		}
	}
	if a := t.affinity; a != nil && x.affKey != "" && x.ex.Len() == 0 {
		if addr, ok := a.aff.Lookup(x.affKey); ok {
			if b := t.pool.Backend(addr); b != nil && b.Usable() && b.TryInc() {
				x.ex.Add(b.Backend)
				return b
			}
		}
	}
	x.stickyOK = false
	return t.pool.Pick(key, &x.ex)
}

// picked records the backend that answers: in the access log, and in the
// Affinity table for source_ip and header stickiness (stored on every
// request, so that the entry lives while it is used).
func (x *exchange) picked(b *proxy.Backend) {
	if x.le != nil {
		x.le.backend = b.Address()
	}
	if a := x.tgt.affinity; a != nil && x.affKey != "" {
		a.aff.Store(x.affKey, b.Address(), a.ttl)
	}
}

// backendError is a failure of one backend: connecting, sending, or
// reading the response head.
type backendError struct {
	addr string
	op   string
	err  error
}

func (e *backendError) Error() string {
	return fmt.Sprintf("httpproxy: backend %s: %s: %v", e.addr, e.op, e.err)
}
func (e *backendError) Unwrap() error { return e.err }

// roundTrip sends req (the head, and the body when it fits) to a backend
// and reads the response head into x.resp. A backend that cannot be
// reached, or that closes or resets before answering a replayable request
// (idempotent method, whole body in req: RFC 9110 §9.2.2), is excluded
// and another tried, up to the pool's retries. A stale keep-alive
// connection is retried once on a fresh connection to the same backend.
// startBody, if not nil, starts copying the rest of the body once req is
// sent; such a request is not replayable.
func (x *exchange) roundTrip(ctx context.Context, key balance.Key, req []byte, replayable bool, startBody func(*bconn)) error {
	var lastErr error
	for try := 0; ; try++ {
		b := x.pick(key)
		if b == nil {
			if lastErr != nil {
				return lastErr
			}
			return errNoBackend
		}
		retry, err := x.try(ctx, b, req, replayable, startBody)
		if err == nil {
			x.b = b
			x.picked(b)
			return nil
		}
		b.Release()
		lastErr = err
		x.f.log.Debug("backend failed", "backend", b.Address(), "err", err, "retry", retry && try < x.tgt.retries)
		if !retry || try >= x.tgt.retries || ctx.Err() != nil {
			return err
		}
	}
}

// try sends the request to b. retry reports whether the request may go to
// another backend after the error.
func (x *exchange) try(ctx context.Context, b *proxy.Backend, req []byte, replayable bool, startBody func(*bconn)) (retry bool, err error) {
	t := x.tgt
	var bc *bconn
	if x.priv != nil {
		bc = x.priv.get(b)
	} else {
		bc = x.f.cp.get(b)
	}
	if bc != nil && !replayable && !alive(bc.c) {
		bc.Close() // do not risk a request that cannot be replayed
		bc = nil
	}
	for {
		fresh := bc == nil
		if fresh {
			if bc, err = x.dial(ctx, b, t.connectTimeout); err != nil {
				b.CountFailure()
				b.Report(health.ConnectError)
				return true, &backendError{b.Address(), "connect", err}
			}
		}
		x.setConn(bc)
		bc.in.get(true)
		start := time.Now()
		if x.le != nil {
			x.le.connect = start.UnixNano() - x.le.start
		}
		var dl time.Time
		if t.readTimeout > 0 {
			dl = start.Add(t.readTimeout)
		}
		bc.c.SetDeadline(dl)
		if startBody == nil {
			// The usual case: send, and read the first bytes of the
			// answer in the same wait.
			var nw, nr int
			nw, nr, err = bc.raw.writeRead(req, bc.in.b[bc.in.w:])
			bc.in.w += nr
			x.sent += uint64(nw)
			if err == nil && nw < len(req) {
				nw, err = bc.c.Write(req[nw:])
				x.sent += uint64(nw)
			}
		} else {
			_, err = bc.c.Write(req)
			if err == nil {
				x.sent += uint64(len(req))
				startBody(bc)
				startBody = nil
			}
		}
		if err == nil {
			err = bc.readHead(&x.resp)
		}
		if err == nil {
			now := time.Now()
			b.CountConnect(now.Sub(start))
			if x.le != nil {
				x.le.firstByte = now.UnixNano() - x.le.start
			}
			if x.resp.status >= 500 {
				b.Report(health.Status5xx)
			} else {
				b.Report(health.Success)
			}
			x.bc = bc
			return false, nil
		}
		answered := bc.in.len() > 0
		x.setConn(nil)
		bc.discard()
		if isTimeout(err) {
			b.CountFailure()
			b.Report(health.Timeout)
			return false, &backendError{b.Address(), "read", errBackendTimeout}
		}
		if !answered && !fresh && replayable && !x.copying {
			bc = nil // the backend closed the idle connection: once more
			continue
		}
		b.CountFailure()
		b.Report(health.Reset)
		if errors.Is(err, errBadResponse) || errors.Is(err, errResponseTooBig) {
			return false, &backendError{b.Address(), "response", err}
		}
		return replayable && !answered && !x.copying, &backendError{b.Address(), "request", err}
	}
}

// dial opens a new connection to b; one of a client connection's own
// starts with the PROXY header.
func (x *exchange) dial(ctx context.Context, b *proxy.Backend, timeout time.Duration) (*bconn, error) {
	bc, err := x.f.cp.dial(ctx, b, timeout)
	if err != nil || x.priv == nil {
		return bc, err
	}
	bc.c.SetWriteDeadline(time.Now().Add(timeout))
	if _, err := bc.c.Write(x.priv.header()); err != nil {
		bc.discard()
		return nil, err
	}
	return bc, nil
}

// setConn publishes the connection in use, so that Close can cut it.
func (x *exchange) setConn(bc *bconn) {
	x.cur.Store(bc)
	if bc != nil && x.f.cut.Load() {
		bc.Close()
	}
}

// cut closes the backend connection in use, or cancels the h2c
// exchange, from another goroutine.
func (x *exchange) cut() {
	if bc := x.cur.Load(); bc != nil {
		bc.Close()
	}
	if c := x.stop.Load(); c != nil {
		(*c)()
	}
}

// readHead reads a response head into h; it stays in bc.in until the
// caller consumes h.size bytes.
func (bc *bconn) readHead(h *respHead) error {
	sc := headScanner{resp: true}
	for {
		if bc.in.len() > 0 {
			n, err := sc.scan(bc.in.data())
			if err != nil {
				return fmt.Errorf("%w: %w", errBadResponse, err)
			}
			if n > 0 {
				if err := parseResponseHead(h, bc.in.data()[:n]); err != nil {
					return fmt.Errorf("%w: %w", errBadResponse, err)
				}
				return nil
			}
		}
		n, err := bc.in.fill(bc.c)
		if n == 0 && err != nil {
			if errors.Is(err, errHeadTooLarge) {
				return errResponseTooBig
			}
			return err
		}
	}
}

// statusFor maps a round trip error to the status answered to the client.
func statusFor(err error) int {
	switch {
	case errors.Is(err, errNoBackend):
		return 503
	case errors.Is(err, errBackendTimeout):
		return 504
	}
	return 502
}

// waitCopy waits for the request body copy, first unblocking it if the
// response is complete (or failed) while it still runs. It reports
// whether the whole body was read from the client.
func (x *exchange) waitCopy(force bool) bool {
	if !x.copying {
		return x.copyAll
	}
	if force {
		x.abort()
	} else {
		select {
		case <-x.copyDone:
			x.copying = false
			return x.copyAll
		default:
			// The backend answered before reading the whole body (RFC
			// 9112 §9.5 allows it): stop sending.
			x.abort()
		}
	}
	<-x.copyDone
	x.copying = false
	return x.copyAll
}

// finish ends the exchange: the connection goes back to the pool when the
// response was read exactly and the request body fully sent, and the
// backend is released.
func (x *exchange) finish(reusable bool) {
	if x.bc != nil {
		x.setConn(nil)
		switch {
		case !reusable || x.resp.close || x.bc.in.len() > 0 || x.f.cut.Load():
			x.bc.discard()
		case x.priv != nil:
			x.priv.put(x.bc)
		default:
			x.f.cp.put(x.bc)
		}
		x.bc = nil
	}
	if c := x.stop.Load(); c != nil {
		(*c)() // the h2c exchange is over: its stream ends if it has not
		x.stop.Store(nil)
	}
	if x.b != nil {
		x.b.CountBytes(x.sent, x.recv)
		x.b.Release()
		x.b = nil
	}
}

// setCookie reports whether the response must set the sticky cookie, and
// the token.
func (x *exchange) setCookie() (string, bool) {
	s := x.tgt.sticky
	if s == nil || x.stickyOK || x.b == nil {
		return "", false
	}
	return s.token(x.b.Address()), true
}
