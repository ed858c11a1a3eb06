package proxy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"

	"lbd/config"
)

// TCPFrontend is a mode = "tcp" frontend: every accepted connection is
// spliced, byte for byte, to a backend of the frontend's pool.
//
// On Linux the sessions run in a few event loops of the frontend's own
// (reactor_linux.go: epoll, non-blocking sockets, HAProxy's design), so an
// idle connection costs a few hundred bytes and no goroutine; elsewhere
// each session runs in a goroutine (tcp_other.go).
type TCPFrontend struct {
	name string
	ln   *net.TCPListener
	cfg  atomic.Pointer[config.Frontend]
	pool atomic.Pointer[Pool]
	aff  Affinity // source-IP persistence
	log  *slog.Logger

	gate   *Gate
	noBack atomic.Uint64 // clients closed because no backend could take them
	eng    tcpEngine     // runs the sessions

	mu      sync.Mutex // guards started and closing
	started bool
	closing bool
}

// copyBuf is the buffer one read moves when a direction wakes up: 16 KiB
// like HAProxy's default bufsize. Buffers are held only while data is in
// flight, so an idle connection holds none; a read that fills one marks a
// bulk transfer, which then moves with splice(2).
const copyBuf = 16 << 10

// tcpEngine is what runs a frontend's sessions: the event loops on Linux,
// a goroutine per session elsewhere.
type tcpEngine interface {
	start()         // accept and serve
	wake()          // max_connections may have changed: look again
	stopAccepting() // accept no more; returns once no session can start
	waitSessions()  // wait until every session has ended
	cut()           // close every open session
	stop()          // end the engine's goroutines and wait for them
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
	f := &TCPFrontend{name: cfg.Name, ln: ln, aff: aff, log: log.With("frontend", cfg.Name), gate: NewGate()}
	if f.aff == nil {
		f.aff = NewLocalAffinity()
	}
	f.cfg.Store(&cfg)
	f.pool.Store(pool)
	if f.eng, err = newTCPEngine(f); err != nil {
		ln.Close()
		return nil, fmt.Errorf("proxy: frontend %s: %w", cfg.Name, err)
	}
	return f, nil
}

// Update applies a reloaded configuration of the same bind address and
// mode, and the pool new connections go to; open connections keep theirs.
func (f *TCPFrontend) Update(cfg config.Frontend, pools Pools) {
	f.cfg.Store(&cfg)
	f.pool.Store(pools[cfg.DefaultPool])
	f.gate.Wake()
	f.eng.wake()
}

// Addr returns the bound address.
func (f *TCPFrontend) Addr() net.Addr { return f.ln.Addr() }

// Pool returns the pool new connections go to.
func (f *TCPFrontend) Pool() *Pool { return f.pool.Load() }

// Start begins accepting; the frontend's goroutines run until Close.
func (f *TCPFrontend) Start() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.started || f.closing {
		return
	}
	f.started = true
	f.eng.start()
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
	f.eng.stopAccepting()
	idle := make(chan struct{})
	go func() { f.eng.waitSessions(); close(idle) }()
	select {
	case <-idle:
	case <-ctx.Done():
		f.eng.cut()
		<-idle
	}
	f.eng.stop()
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

// Serving reports whether the frontend accepts connections (see
// Gate.Serving): what the implicit proxy track of VRRP checks.
func (f *TCPFrontend) Serving() bool { return f.gate.Serving() }

// Config returns the frontend's current configuration.
func (f *TCPFrontend) Config() config.Frontend { return *f.cfg.Load() }
