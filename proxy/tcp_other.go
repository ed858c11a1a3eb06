//go:build !linux

package proxy

import (
	"context"
	"errors"
	"io"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"lbd/proxy/balance"
)

// chunk is how much one splice call may move before the copy loop pushes
// the idle deadlines forward. A transfer slower than chunk per idle_timeout
// counts as idle.
const chunk = 512 << 10

// goEngine runs each session in a goroutine of its own, with Go's dialer
// and net.Conn: the portable engine.
type goEngine struct {
	f         *TCPFrontend
	accepting sync.WaitGroup // the accept loop
	open      sync.WaitGroup // sessions

	mu       sync.Mutex // guards sessions
	sessions map[*tcpSession]struct{}
}

func newTCPEngine(f *TCPFrontend) (tcpEngine, error) {
	return &goEngine{f: f, sessions: make(map[*tcpSession]struct{})}, nil
}

func (e *goEngine) start() { e.accepting.Go(e.serve) }

func (e *goEngine) wake() {} // Update woke the gate

func (e *goEngine) stopAccepting() { e.accepting.Wait() }

func (e *goEngine) waitSessions() { e.open.Wait() }

func (e *goEngine) stop() {}

func (e *goEngine) cut() {
	e.mu.Lock()
	defer e.mu.Unlock()
	for s := range e.sessions {
		s.Close()
	}
}

func (e *goEngine) serve() {
	f := e.f
	limit := func() int { return f.cfg.Load().MaxConnections }
	for {
		c, ok := f.gate.Accept(f.ln, limit, f.log)
		if !ok {
			return
		}
		s := &tcpSession{e: e, f: f, client: c}
		e.mu.Lock()
		e.sessions[s] = struct{}{}
		e.open.Add(1)
		e.mu.Unlock()
		go s.run()
	}
}

// done is called once per accepted connection when it ends.
func (e *goEngine) done(s *tcpSession) {
	e.mu.Lock()
	delete(e.sessions, s)
	e.mu.Unlock()
	e.f.gate.Done()
	e.open.Done()
}

// tcpSession is one proxied connection.
type tcpSession struct {
	e       *goEngine
	f       *TCPFrontend
	client  *net.TCPConn
	backend *net.TCPConn
	b       *Backend
	once    sync.Once
}

// Close cuts both sides of the session.
func (s *tcpSession) Close() error {
	s.once.Do(func() {
		s.client.Close()
		if s.backend != nil {
			s.backend.Close()
		}
	})
	return nil
}

func (s *tcpSession) run() {
	defer s.e.done(s)
	defer s.Close()
	f := s.f
	pool := f.pool.Load()
	cfg := pool.Config()
	src := addrPort(s.client.RemoteAddr())
	ctx, cancel := context.WithTimeout(context.Background(), cfg.ConnectTimeout.D()*time.Duration(max(1, len(pool.backends))))
	fc := f.cfg.Load()
	var (
		b    *Backend
		conn net.Conn
		err  error
		key  string
	)
	if cfg.Sticky.SourceIP {
		// The client's backend of last time, from this node or (with a
		// cluster) from the node that served it before a failover.
		key = SourceIPKey(cfg.Name, src.Addr())
		if addr, ok := f.aff.Lookup(key); ok {
			b, conn, _ = pool.dialSticky(ctx, addr)
		}
	}
	if conn == nil {
		b, conn, err = pool.dial(ctx, balance.HashAddr(src.Addr()))
	}
	cancel()
	if err != nil {
		f.noBack.Add(1)
		f.log.Warn("no backend for client", "client", src, "pool", cfg.Name, "err", err)
		return
	}
	defer b.Release()
	if key != "" {
		f.aff.Store(key, b.Address(), cfg.Sticky.TTL.D())
	}
	s.b = b
	s.backend = conn.(*net.TCPConn)
	b.Track(s)
	defer b.Untrack(s)

	if fc.ProxyProtocol != "" {
		hdr, err := AppendProxyHeader(nil, fc.ProxyProtocol, src, addrPort(s.client.LocalAddr()))
		if err == nil {
			s.backend.SetWriteDeadline(time.Now().Add(cfg.ConnectTimeout.D()))
			_, err = s.backend.Write(hdr)
		}
		if err != nil {
			f.log.Warn("sending PROXY header failed", "backend", b.Address(), "err", err)
			return
		}
	}
	s.pipe(fc.IdleTimeout.D())
}

// pipe copies both directions until both are closed, an error, or idle.
// Each direction half-closes its destination when its source says EOF, so
// protocols that shut down one way (rsync, HTTP/1.0 clients) keep working.
func (s *tcpSession) pipe(idle time.Duration) {
	s.touch(idle)
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := s.copyHalf(s.backend, s.client, &s.b.bytesIn, idle); err != nil {
			s.Close()
		}
	})
	if err := s.copyHalf(s.client, s.backend, &s.b.bytesOut, idle); err != nil {
		s.Close()
	}
	wg.Wait()
}

// touch pushes both connections' deadlines idle into the future.
func (s *tcpSession) touch(idle time.Duration) {
	if idle <= 0 {
		return
	}
	dl := time.Now().Add(idle)
	s.client.SetDeadline(dl)
	s.backend.SetDeadline(dl)
}

var bufPool = sync.Pool{New: func() any { b := make([]byte, copyBuf); return &b }}

// copyHalf moves src to dst until src says EOF, then half-closes dst,
// through a pooled buffer, and switches to splice(2) where the platform
// has it (io.Copy's path between two *net.TCPConn) when a read fills the
// buffer: a bulk transfer.
func (s *tcpSession) copyHalf(dst, src *net.TCPConn, counter *atomic.Uint64, idle time.Duration) error {
	for {
		bp := bufPool.Get().(*[]byte)
		buf := *bp
		n, rerr := src.Read(buf)
		var werr error
		if n > 0 {
			_, werr = dst.Write(buf[:n])
			counter.Add(uint64(n))
		}
		bufPool.Put(bp)
		switch {
		case werr != nil:
			return werr
		case errors.Is(rerr, io.EOF):
			return dst.CloseWrite()
		case rerr != nil:
			return rerr
		}
		s.touch(idle)
		if n == len(buf) {
			return s.splice(dst, src, counter, idle)
		}
	}
}

// splice moves the rest of a bulk transfer chunk by chunk so that the idle
// deadlines move with the traffic, and half-closes dst at src's EOF.
func (s *tcpSession) splice(dst, src *net.TCPConn, counter *atomic.Uint64, idle time.Duration) error {
	lr := io.LimitedReader{R: src}
	for {
		lr.N = chunk
		n, err := dst.ReadFrom(&lr)
		counter.Add(uint64(n))
		if err != nil {
			return err
		}
		if lr.N > 0 { // less than a chunk and no error: src said EOF
			return dst.CloseWrite()
		}
		s.touch(idle)
	}
}

// dial picks a backend and connects to it. A backend that refuses or does
// not answer within connect_timeout is excluded and the next one tried, so
// a client sees a connect failure only when no backend can take it. On
// success the backend's active count includes the new connection: the
// caller calls Release when it ends.
func (p *Pool) dial(ctx context.Context, key balance.Key) (*Backend, net.Conn, error) {
	var ex balance.Exclude
	var lastErr error
	for {
		b := p.Pick(key, &ex)
		if b == nil {
			return nil, nil, noBackendErr(lastErr)
		}
		start := time.Now()
		c, err := p.dialer().DialContext(ctx, "tcp", b.Address())
		if err == nil {
			b.connected(time.Since(start))
			return b, c, nil
		}
		b.connectFailed()
		lastErr = err
		p.log.Debug("backend connect failed", "backend", b.Address(), "err", err)
		if ctx.Err() != nil {
			return nil, nil, err
		}
	}
}

// dialSticky connects to the backend at addr when it is in the pool, usable
// and has room; ok is false otherwise or when it does not answer, and the
// caller balances as usual.
func (p *Pool) dialSticky(ctx context.Context, addr string) (*Backend, net.Conn, bool) {
	b := p.stickyBackend(addr)
	if b == nil {
		return nil, nil, false
	}
	start := time.Now()
	c, err := p.dialer().DialContext(ctx, "tcp", b.Address())
	if err != nil {
		b.connectFailed()
		return nil, nil, false
	}
	b.connected(time.Since(start))
	return b, c, true
}

// dialer opens connections to the pool's backends. No TCP keep-alive
// probes (HAProxy's default, without option srvtcpka): idle timeouts end
// dead connections, and setting the probes up costs four system calls per
// connection.
func (p *Pool) dialer() *net.Dialer {
	return &net.Dialer{Timeout: p.cfg.ConnectTimeout.D(), KeepAlive: -1}
}

func addrPort(a net.Addr) netip.AddrPort {
	if t, ok := a.(*net.TCPAddr); ok {
		return t.AddrPort()
	}
	return netip.AddrPort{}
}
