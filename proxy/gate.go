package proxy

import (
	"errors"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// Gate is a frontend's accept loop discipline, shared by the TCP and HTTP
// frontends: it accepts while the frontend is below max_connections and
// pauses accepting (clients wait in the kernel's accept queue) while it is
// full, backs off on accept errors such as EMFILE instead of spinning, and
// counts connections. Its methods are safe for concurrent use.
type Gate struct {
	Active atomic.Int64  // open connections
	Total  atomic.Uint64 // accepted
	Full   atomic.Uint64 // times accepting paused at max_connections

	serving

	freed    chan struct{} // signalled when a connection ends
	stopped  chan struct{} // closed by Stop
	stopOnce sync.Once
}

// NewGate returns an open gate.
func NewGate() *Gate {
	return &Gate{freed: make(chan struct{}, 1), stopped: make(chan struct{})}
}

// Accept waits for room under limit() (≤ 0: no limit) and accepts the next
// connection, counting it active. It returns false once Stop was called or
// the listener is closed.
func (g *Gate) Accept(ln *net.TCPListener, limit func() int, log *slog.Logger) (*net.TCPConn, bool) {
	var delay time.Duration
	for {
		if !g.waitRoom(limit, log) {
			return nil, false
		}
		c, err := ln.AcceptTCP()
		if err == nil {
			g.AcceptOK()
			g.Total.Add(1)
			g.Active.Add(1)
			return c, true
		}
		if errors.Is(err, net.ErrClosed) {
			select {
			case <-g.stopped:
			default:
				g.lost.Store(true)
				log.Error("the listener closed: this frontend no longer accepts")
			}
			return nil, false
		}
		g.AcceptFailed()
		// EMFILE and friends: back off as net/http does, never spin.
		delay = min(max(2*delay, 5*time.Millisecond), time.Second)
		log.Error("accept failed", "err", err, "retry_in", delay)
		select {
		case <-time.After(delay):
		case <-g.stopped:
			return nil, false
		}
	}
}

func (g *Gate) waitRoom(limit func() int, log *slog.Logger) bool {
	paused := false
	for {
		max := int64(limit())
		if max <= 0 || g.Active.Load() < max {
			return true
		}
		if !paused {
			paused = true
			g.Full.Add(1)
			log.Warn("max_connections reached, accepting paused", "max_connections", max)
		}
		select {
		case <-g.freed:
		case <-g.stopped:
			return false
		}
	}
}

// failGrace is how long taking new clients may keep failing before the
// frontend counts as not serving: a burst of EMFILE that clears is not a
// failure of the node.
const failGrace = time.Second

// serving follows whether a frontend takes new clients (accepting TCP
// connections, opening UDP flows). The VRRP instance serving the
// frontend's address goes to FAULT when it does not.
type serving struct {
	failingSince atomic.Int64 // unix ns of the first failure in a row; 0: the last attempt worked
	lost         atomic.Bool  // the socket closed under the frontend, not by its Close
}

func (s *serving) ok() {
	if s.failingSince.Load() != 0 {
		s.failingSince.Store(0)
	}
}

func (s *serving) failed() { s.failingSince.CompareAndSwap(0, time.Now().UnixNano()) }

// Serving reports whether the frontend takes new clients: its socket is
// open, and taking clients has not kept failing for failGrace.
func (s *serving) Serving() bool {
	if s.lost.Load() {
		return false
	}
	since := s.failingSince.Load()
	return since == 0 || time.Since(time.Unix(0, since)) < failGrace
}

// AcceptOK records an accepted connection: accepting works.
func (g *Gate) AcceptOK() { g.ok() }

// AcceptFailed records an accept error (EMFILE, ENFILE, ENOBUFS...).
func (g *Gate) AcceptFailed() { g.failed() }

// Done counts a connection Accept returned as ended.
func (g *Gate) Done() {
	g.Active.Add(-1)
	g.Wake()
}

// Wake makes a paused Accept look at the limit again (it changed).
func (g *Gate) Wake() {
	select {
	case g.freed <- struct{}{}:
	default:
	}
}

// Stop makes Accept return false; it is safe to call more than once.
func (g *Gate) Stop() { g.stopOnce.Do(func() { close(g.stopped) }) }

// Stopped is closed by Stop.
func (g *Gate) Stopped() <-chan struct{} { return g.stopped }
