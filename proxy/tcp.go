package proxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"lbd/config"
	"lbd/proxy/balance"
)

// chunk is how much one splice call may move before the copy loop pushes
// the idle deadlines forward. A transfer slower than chunk per idle_timeout
// counts as idle.
const chunk = 512 << 10

// TCPFrontend is a mode = "tcp" frontend: every accepted connection is
// spliced, byte for byte, to a backend of the frontend's pool.
type TCPFrontend struct {
	name string
	ln   *net.TCPListener
	cfg  atomic.Pointer[config.Frontend]
	pool atomic.Pointer[Pool]
	aff  Affinity // source-IP persistence
	log  *slog.Logger

	gate   *Gate
	noBack atomic.Uint64 // clients closed because no backend could take them

	mu       sync.Mutex // guards sessions and closing
	sessions map[*tcpSession]struct{}
	closing  bool
	wg       sync.WaitGroup // accept loop and sessions
}

// ListenTCP binds the frontend's address (with IP_FREEBIND) and returns the
// frontend, ready to Serve.
// aff keeps source-IP persistence for pools with [pool.sticky] source_ip;
// nil gives a table local to this frontend.
func ListenTCP(cfg config.Frontend, pool *Pool, aff Affinity, log *slog.Logger) (*TCPFrontend, error) {
	ln, err := listenTCP(context.Background(), cfg.Bind)
	if err != nil {
		return nil, fmt.Errorf("proxy: frontend %s: listening on %s: %w", cfg.Name, cfg.Bind, err)
	}
	f := &TCPFrontend{
		name: cfg.Name, ln: ln, aff: aff, log: log.With("frontend", cfg.Name),
		sessions: make(map[*tcpSession]struct{}),
		gate:     NewGate(),
	}
	if f.aff == nil {
		f.aff = NewLocalAffinity()
	}
	f.cfg.Store(&cfg)
	f.pool.Store(pool)
	return f, nil
}

// Update applies a reloaded configuration of the same bind address and
// mode, and the pool new connections go to; open connections keep theirs.
func (f *TCPFrontend) Update(cfg config.Frontend, pools Pools) {
	f.cfg.Store(&cfg)
	f.pool.Store(pools[cfg.DefaultPool])
	f.gate.Wake()
}

// Addr returns the bound address.
func (f *TCPFrontend) Addr() net.Addr { return f.ln.Addr() }

// Pool returns the pool new connections go to.
func (f *TCPFrontend) Pool() *Pool { return f.pool.Load() }

// Start runs the accept loop in a goroutine owned by f until Close.
func (f *TCPFrontend) Start() {
	f.wg.Add(1)
	go func() {
		defer f.wg.Done()
		f.serve()
	}()
}

func (f *TCPFrontend) serve() {
	limit := func() int { return f.cfg.Load().MaxConnections }
	for {
		c, ok := f.gate.Accept(f.ln, limit, f.log)
		if !ok {
			return
		}
		s := &tcpSession{f: f, client: c}
		if !f.add(s) {
			c.Close()
			f.done(s)
			return
		}
		go s.run()
	}
}

func (f *TCPFrontend) add(s *tcpSession) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closing {
		return false
	}
	f.sessions[s] = struct{}{}
	f.wg.Add(1)
	return true
}

// done is called once per accepted connection when it ends.
func (f *TCPFrontend) done(s *tcpSession) {
	f.mu.Lock()
	_, ok := f.sessions[s]
	delete(f.sessions, s)
	f.mu.Unlock()
	f.gate.Done()
	if ok {
		f.wg.Done()
	}
}

// Close stops accepting, lets open connections finish until ctx is done,
// then cuts the rest, and waits for every goroutine of the frontend.
func (f *TCPFrontend) Close(ctx context.Context) error {
	f.mu.Lock()
	if f.closing {
		f.mu.Unlock()
		return nil
	}
	f.closing = true
	f.mu.Unlock()
	f.gate.Stop()
	err := f.ln.Close()
	idle := make(chan struct{})
	go func() { f.wg.Wait(); close(idle) }()
	select {
	case <-idle:
	case <-ctx.Done():
		f.mu.Lock()
		for s := range f.sessions {
			s.Close()
		}
		f.mu.Unlock()
		<-idle
	}
	if err != nil && !errors.Is(err, net.ErrClosed) {
		return fmt.Errorf("proxy: frontend %s: %w", f.name, err)
	}
	return nil
}

// FrontendStats are a frontend's counters.
type FrontendStats struct {
	Active                 int64
	Total, Full, NoBackend uint64
}

// Stats returns the frontend's counters.
func (f *TCPFrontend) Stats() FrontendStats {
	g := f.gate
	return FrontendStats{Active: g.Active.Load(), Total: g.Total.Load(), Full: g.Full.Load(), NoBackend: f.noBack.Load()}
}

// tcpSession is one proxied connection.
type tcpSession struct {
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
	defer s.f.done(s)
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
		hdr, err := appendProxyHeader(nil, fc.ProxyProtocol, src, addrPort(s.client.LocalAddr()))
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

// copyBuf is the buffer one read moves when a direction wakes up: 16 KiB
// like HAProxy's default bufsize. Buffers are pooled and held only while
// data is in flight, so an idle connection holds none.
const copyBuf = 16 << 10

var bufPool = sync.Pool{New: func() any { b := make([]byte, copyBuf); return &b }}

// copyHalf moves src to dst until src says EOF, then half-closes dst.
// It waits for data holding nothing but its goroutine, moves what came
// with one read and one write through a pooled buffer (the common case of
// small exchanges costs two system calls, as in HAProxy), and switches to
// splice(2) — io.Copy's zero-copy path between two *net.TCPConn — when a
// read fills the buffer: a bulk transfer. The idle deadlines move with the
// traffic.
func (s *tcpSession) copyHalf(dst, src *net.TCPConn, counter *atomic.Uint64, idle time.Duration) error {
	rc, err := src.SyscallConn()
	if err != nil {
		return err
	}
	w := newReadWaiter(rc)
	for {
		if err := w.wait(); err != nil {
			return err
		}
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

// splice moves the rest of a bulk transfer with splice(2), chunk by chunk
// so that the idle deadlines move with the traffic, and half-closes dst at
// src's EOF.
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

func addrPort(a net.Addr) netip.AddrPort {
	if t, ok := a.(*net.TCPAddr); ok {
		return t.AddrPort()
	}
	return netip.AddrPort{}
}

// Config returns the frontend's current configuration.
func (f *TCPFrontend) Config() config.Frontend { return *f.cfg.Load() }
