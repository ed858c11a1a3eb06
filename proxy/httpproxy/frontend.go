package httpproxy

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/http2"

	"lbd/config"
	"lbd/proxy"
)

// Frontend is a mode = "http" frontend: it accepts HTTP/1.1 and HTTP/2
// clients, in plain text or TLS, and forwards their requests to the pools
// its routes name.
type Frontend struct {
	name string
	ln   *net.TCPListener
	st   atomic.Pointer[state]
	aff  proxy.Affinity
	log  *slog.Logger
	cp   *connPool
	h2c  *h2cPool

	logMu sync.Mutex // guards alog
	alog  *accessLog // nil: access_log is off

	certs     atomic.Pointer[certStore] // served by getCertificate; nil without TLS
	certMu    sync.Mutex                // guards certFiles
	certFiles certFiles                 // where certs came from, watched by watchCerts

	secret    [32]byte   // keys sticky cookie tokens
	ticketKey [32]byte   // TLS session tickets, kept across reloads
	stickyMu  sync.Mutex // guards stickies
	stickies  map[string]*sticky

	h1s *http.Server // base configuration of the HTTP/2 server
	// x/net's server serves the one connection the frontend hands it
	// (after sniffing h2c or ALPN); net/http has no ServeConn.
	//lint:ignore SA1019 see above
	h2s *http2.Server

	gate   *proxy.Gate // accepting under max_connections, counters
	noBack atomic.Uint64

	cut atomic.Bool // Close's deadline passed: cut everything

	mu       sync.Mutex // guards sessions and closing
	sessions map[session]struct{}
	closing  bool
	wg       sync.WaitGroup // accept loop and connections
}

// session is an open client connection, as Close sees it.
type session interface {
	// shut closes the connection if it is idle, or at once when force.
	shut(force bool)
}

// state is the part of a Frontend a reload replaces. Requests read it once
// when they start.
type state struct {
	cfg        config.Frontend
	router     router
	tls        *tls.Config // nil: plain HTTP (with h2c prior knowledge)
	certs      *certStore
	idle       time.Duration
	header     time.Duration
	reqID      string // request_id_header as configured
	reqIDLower string
	proto      string // X-Forwarded-Proto
	targets    map[string]*target
	alog       *accessLog // nil: no access log
	certFiles  *certFiles // the files certs were loaded from now; nil: kept the previous ones
}

// Listen binds cfg.Bind (with IP_FREEBIND) and returns the frontend, ready
// to Start. aff holds sticky cookie tokens; nil means a local table.
func Listen(cfg config.Frontend, pools proxy.Pools, aff proxy.Affinity, log *slog.Logger) (*Frontend, error) {
	if aff == nil {
		aff = proxy.NewLocalAffinity()
	}
	f := &Frontend{
		name: cfg.Name, aff: aff, log: log.With("frontend", cfg.Name),
		stickies: make(map[string]*sticky),
		sessions: make(map[session]struct{}),
		gate:     proxy.NewGate(),
		h2c:      newH2CPool(),
	}
	rand.Read(f.secret[:])
	rand.Read(f.ticketKey[:])
	st, err := f.newState(cfg, pools, nil)
	if err != nil {
		return nil, err
	}
	ln, err := proxy.ListenTCPAddr(context.Background(), cfg.Bind)
	if err != nil {
		return nil, fmt.Errorf("httpproxy: frontend %s: listening on %s: %w", cfg.Name, cfg.Bind, err)
	}
	if cfg.AccessLog != "" {
		if f.alog, err = openAccessLog(cfg.Name, cfg.AccessLog, f.log); err != nil {
			ln.Close()
			return nil, err
		}
		st.alog = f.alog
	}
	f.ln = ln
	f.st.Store(st)
	f.useCerts(st)
	f.h1s = &http.Server{MaxHeaderBytes: maxHeadBytes, ErrorLog: slog.NewLogLogger(f.log.Handler(), slog.LevelDebug)}
	//lint:ignore SA1019 x/net's server serves single connections (ServeConn)
	f.h2s = &http2.Server{IdleTimeout: st.idle, MaxConcurrentStreams: 250}
	//lint:ignore SA1019 as above
	if err := http2.ConfigureServer(f.h1s, f.h2s); err != nil {
		ln.Close()
		if f.alog != nil {
			f.alog.close()
		}
		return nil, fmt.Errorf("httpproxy: frontend %s: %w", cfg.Name, err)
	}
	f.cp = newConnPool(f.h2c.reap)
	return f, nil
}

// newState compiles cfg. With prev, a certificate that fails to load keeps
// the previous certificates (a reload must not take a site down); without,
// it is an error.
func (f *Frontend) newState(cfg config.Frontend, pools proxy.Pools, prev *state) (*state, error) {
	st := &state{
		cfg: cfg, idle: cfg.IdleTimeout.D(), header: cfg.HeaderTimeout.D(),
		reqID: cfg.RequestIDHeader, reqIDLower: strings.ToLower(cfg.RequestIDHeader),
		proto: "http", targets: make(map[string]*target),
	}
	tgt := func(name string) *target {
		if t, ok := st.targets[name]; ok {
			return t
		}
		p := pools[name]
		var t *target
		if p != nil {
			t = f.newTarget(p)
		}
		st.targets[name] = t
		return t
	}
	st.router = newRouter(cfg, tgt)
	if cfg.TLSCert != "" {
		files := stampFiles(cfg.TLSCert, cfg.TLSKey)
		certs, err := loadCertStore(cfg.TLSCert, cfg.TLSKey)
		if err == nil {
			st.certFiles = &files
		} else {
			if prev == nil || prev.certs == nil {
				return nil, fmt.Errorf("httpproxy: frontend %s: %w", cfg.Name, err)
			}
			f.log.Error("reload: keeping the previous certificates", "err", err)
			certs = prev.certs
		}
		st.certs = certs
		st.tls = &tls.Config{
			MinVersion:     tlsVersion(cfg.TLSMinVersion),
			NextProtos:     []string{http2.NextProtoTLS, "http/1.1"},
			GetCertificate: f.getCertificate,
		}
		st.tls.SetSessionTicketKeys([][32]byte{f.ticketKey})
		st.proto = "https"
	}
	return st, nil
}

// newTarget reads what requests need from a pool's configuration.
func (f *Frontend) newTarget(p *proxy.Pool) *target {
	pc := p.Config()
	t := &target{
		pool: p, name: pc.Name, hash: newHashKey(pc),
		retries:        max(0, pc.Retries),
		connectTimeout: pc.ConnectTimeout.D(),
		readTimeout:    pc.ReadTimeout.D(),
	}
	if pc.Sticky.Cookie != "" {
		f.stickyMu.Lock()
		s := f.stickies[pc.Name]
		if s == nil || s.cookie != pc.Sticky.Cookie || s.ttl != pc.Sticky.TTL.D() {
			s = newSticky(pc.Name, pc.Sticky.Cookie, pc.Sticky.TTL.D(), f.aff, &f.secret)
			f.stickies[pc.Name] = s
		}
		f.stickyMu.Unlock()
		t.sticky = s
	}
	t.affinity = newAffinityRule(pc.Name, pc.Sticky, f.aff)
	if pc.Protocol == "h2c" {
		t.h2c = f.h2c.backends(p, t.connectTimeout)
	}
	return t
}

// Update applies a reloaded configuration of the same bind address: new
// routes, pools, certificates and settings take effect for new requests;
// the listener and open connections are kept.
func (f *Frontend) Update(cfg config.Frontend, pools proxy.Pools) {
	st, err := f.newState(cfg, pools, f.st.Load())
	if err != nil {
		f.log.Error("reload failed: keeping the previous configuration", "err", err)
		return
	}
	st.alog = f.updateLog(cfg.AccessLog)
	f.st.Store(st)
	f.useCerts(st)
	f.h2c.retain(st)
	f.gate.Wake()
}

// updateLog applies access_log on a reload: the file is opened anew even
// when its name is the same, so that a log rotated by moving the file is
// written afresh. A file that cannot be opened keeps the previous one.
func (f *Frontend) updateLog(path string) *accessLog {
	f.logMu.Lock()
	defer f.logMu.Unlock()
	switch {
	case path == "" && f.alog != nil:
		f.alog.close()
		f.alog = nil
	case path != "" && f.alog == nil:
		l, err := openAccessLog(f.name, path, f.log)
		if err != nil {
			f.log.Error("reload: access log not opened", "err", err)
			return nil
		}
		f.alog = l
	case path != "":
		if err := f.alog.reopen(path); err != nil {
			f.log.Error("reload: access log not reopened, still writing the previous file", "err", err)
		}
	}
	return f.alog
}

// AccessLogStats returns the counters of the access log: lines written,
// lines dropped because the writer fell behind, and failed writes.
func (f *Frontend) AccessLogStats() AccessLogStats {
	f.logMu.Lock()
	defer f.logMu.Unlock()
	if f.alog == nil {
		return AccessLogStats{}
	}
	return f.alog.stats()
}

// Serving reports whether the frontend accepts connections (see
// proxy.Gate.Serving): what the implicit proxy track of VRRP checks.
func (f *Frontend) Serving() bool { return f.gate.Serving() }

// Config returns the frontend's current configuration.
func (f *Frontend) Config() config.Frontend { return f.st.Load().cfg }

// Addr returns the bound address.
func (f *Frontend) Addr() net.Addr { return f.ln.Addr() }

// Stats returns the frontend's counters: open connections, connections
// accepted, times accepting paused at max_connections, and requests
// answered 503 for want of a backend.
func (f *Frontend) Stats() proxy.FrontendStats {
	g := f.gate
	return proxy.FrontendStats{Active: g.Active.Load(), Total: g.Total.Load(), Full: g.Full.Load(), NoBackend: f.noBack.Load()}
}

// Start runs the accept loop in a goroutine owned by f until Close.
func (f *Frontend) Start() {
	f.wg.Go(f.serve)
	f.wg.Go(f.watchCerts)
}

// useCerts serves st's certificates and watches the files they came from.
func (f *Frontend) useCerts(st *state) {
	f.certMu.Lock()
	defer f.certMu.Unlock()
	switch {
	case st.certs == nil:
		f.certs.Store(nil)
		f.certFiles = certFiles{}
	case st.certFiles != nil:
		f.certs.Store(st.certs)
		f.certFiles = *st.certFiles
	}
}

func (f *Frontend) serve() {
	limit := func() int { return f.st.Load().cfg.MaxConnections }
	for {
		c, ok := f.gate.Accept(f.ln, limit, f.log)
		if !ok {
			return
		}
		s := newConn(f, c)
		if !f.add(s) {
			c.Close()
			s.free()
			f.connDone()
			return
		}
		go func() {
			defer f.wg.Done()
			defer f.connDone()
			defer s.free()
			defer f.remove(s) // before free: Close must not shut a recycled conn
			s.serve()
		}()
	}
}

// add registers a session and counts its goroutine in wg; it reports false
// once Close has begun.
func (f *Frontend) add(s session) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closing {
		return false
	}
	f.sessions[s] = struct{}{}
	f.wg.Add(1)
	return true
}

func (f *Frontend) remove(s session) {
	f.mu.Lock()
	delete(f.sessions, s)
	f.mu.Unlock()
}

func (f *Frontend) connDone() { f.gate.Done() }

// closingNow reports whether Close has begun: responses then carry
// Connection: close.
func (f *Frontend) closingNow() bool {
	select {
	case <-f.gate.Stopped():
		return true
	default:
		return false
	}
}

// Close stops accepting and closes idle connections, lets requests in
// flight finish until ctx is done, then cuts the rest, and waits for every
// goroutine of the frontend.
func (f *Frontend) Close(ctx context.Context) error {
	f.mu.Lock()
	if f.closing {
		f.mu.Unlock()
		return nil
	}
	f.closing = true
	f.mu.Unlock()
	f.gate.Stop()
	err := f.ln.Close()
	// HTTP/2 connections get a GOAWAY (RFC 9113 §6.8) and end when their
	// streams do; h1s has no listener or connection of its own to wait for.
	f.h1s.Shutdown(context.Background())
	// Idle connections close now; busy ones after their response (a
	// connection checks Close before it waits for another request).
	f.shutAll(false)
	done := make(chan struct{})
	go func() { f.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		f.cut.Store(true)
		f.shutAll(true)
		<-done
	}
	f.cp.close()
	f.h2c.close()
	f.logMu.Lock()
	if f.alog != nil {
		f.alog.close()
		f.alog = nil
	}
	f.logMu.Unlock()
	if err != nil && !errors.Is(err, net.ErrClosed) {
		return fmt.Errorf("httpproxy: frontend %s: %w", f.name, err)
	}
	return nil
}

// shutAll shuts every session, with mu held so that none is freed (and
// recycled) meanwhile; shut only closes sockets, it does not block.
func (f *Frontend) shutAll(force bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for s := range f.sessions {
		s.shut(force)
	}
}
