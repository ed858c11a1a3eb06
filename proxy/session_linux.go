//go:build linux

package proxy

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"lbd/proxy/balance"
)

// Session states.
const (
	stateDialing    = iota // picking a backend, or looking up its name
	stateConnecting        // connect(2) in progress
	stateOpen              // both sides connected: copying
	stateClosed
)

// session is one proxied connection, driven by its loop's events. Only the
// loop's goroutine touches it, except Close.
type session struct {
	l      *loop
	cfd    int // client socket
	bfd    int // backend socket; -1 while there is none
	state  uint8
	queued bool // in the loop's again list
	cut    atomic.Bool

	src  netip.AddrPort // the client
	b    *Backend       // once open
	dial *dialState     // until open
	idle time.Duration  // idle_timeout; 0: none
	last int64          // loop clock at the last byte moved
	at   int64          // timer: connect or idle timeout
	ti   int            // index in the loop's timer heap; -1: none

	up, down flow // client → backend, backend → client
}

// flow is one direction of a session.
type flow struct {
	src, dst int
	buf      *[copyBuf]byte // data read from src and not yet written to dst: buf[off:end]
	off, end int
	pipe     pipe // splice pipe (bulk), holding inPipe bytes
	inPipe   int
	hasPipe  bool
	readable bool // src had an event since read last said EAGAIN
	writable bool // dst had an event since write last said EAGAIN
	rdhup    bool // src's peer sent FIN: a short read is the last
	readAll  bool // a short read is no proof of an empty queue: read until EAGAIN, EOF or the error
	bulk     bool // moves with splice(2)
	eof      bool // src said EOF
	shut     bool // the EOF was passed on: dst shut down for writing
	bytes    *atomic.Uint64
}

// dialState is what a session needs while it looks for a backend.
type dialState struct {
	pool       *Pool
	proxyProto string
	hkey       balance.Key
	ex         balance.Exclude
	key        string // source-IP persistence key; "" without
	sticky     string // the backend remembered for key, to try first
	viaSticky  bool   // b is the remembered backend
	b          *Backend
	start      int64 // clock when connecting to b began
	until      int64 // clock after which a failure ends the search
	addrs      []netip.AddrPort
	one        [1]netip.AddrPort
	cur        netip.AddrPort // the address being connected
	err        error          // the attempt's error
	lastErr    error          // the last failed attempt's error
	cancel     context.CancelFunc
}

// Close cuts both sides of the session; safe from any goroutine (draining,
// Close of the frontend).
func (s *session) Close() error {
	if s.cut.CompareAndSwap(false, true) {
		s.l.cutSession(s)
	}
	return nil
}

// open starts a session for an accepted client socket, already counted
// active (reserve).
func (l *loop) open(fd int, src netip.AddrPort) {
	f := l.f
	f.gate.Total.Add(1)
	l.r.open.Add(1)
	s := &session{l: l, cfd: fd, bfd: -1, ti: -1, src: src}
	s.up = flow{src: fd, dst: -1}
	s.down = flow{src: -1, dst: fd}
	if err := l.register(fd, s, sideClient); err != nil {
		f.log.Error("watching a client socket failed", "client", src, "err", err)
		l.end(s)
		return
	}
	pool := f.pool.Load()
	fc := f.cfg.Load()
	s.idle = fc.IdleTimeout.D()
	d := &dialState{pool: pool, proxyProto: fc.ProxyProtocol, hkey: balance.HashAddr(src.Addr())}
	d.until = l.now + int64(pool.cfg.ConnectTimeout.D())*int64(max(1, len(pool.backends)))
	if pool.cfg.Sticky.SourceIP {
		// The client's backend of last time, from this node or (with a
		// cluster) from the node that served it before a failover.
		d.key = SourceIPKey(pool.cfg.Name, src.Addr())
		if addr, ok := f.aff.Lookup(d.key); ok {
			d.sticky = addr
		}
	}
	s.dial = d
	l.dial(s)
}

// dial picks backends until a connection to one is under way. A backend
// that refuses or does not answer within connect_timeout is excluded and
// the next one tried, so a client sees a connect failure only when no
// backend can take it.
func (l *loop) dial(s *session) {
	d := s.dial
	for {
		b := d.next()
		if b == nil {
			l.noBackend(s, noBackendErr(d.lastErr))
			return
		}
		d.b, d.start = b, nanotime()
		if !b.ap.IsValid() {
			if l.resolve(s) {
				return
			}
		} else {
			d.one[0] = b.ap
			d.addrs = d.one[:]
			if l.connectNext(s) {
				return
			}
		}
		if !l.attemptFailed(s) {
			return
		}
	}
}

// next returns the next backend to try, counted as active: the remembered
// one first, then the balancer's pick.
func (d *dialState) next() *Backend {
	if d.sticky != "" {
		addr := d.sticky
		d.sticky = ""
		if b := d.pool.stickyBackend(addr); b != nil {
			d.viaSticky = true
			return b
		}
	}
	d.viaSticky = false
	return d.pool.Pick(d.hkey, &d.ex)
}

// attemptFailed accounts for a backend that could not be reached and
// reports whether to try another: not once the search took longer than
// connect_timeout per backend (then the client is closed).
func (l *loop) attemptFailed(s *session) bool {
	d := s.dial
	b := d.b
	d.b = nil
	b.connectFailed()
	if d.viaSticky {
		return true // the remembered backend is gone: balance as usual
	}
	d.lastErr = d.err
	d.pool.log.Debug("backend connect failed", "backend", b.Address(), "err", d.err)
	if nanotime() >= d.until {
		l.noBackend(s, d.err)
		return false
	}
	return true
}

func (l *loop) noBackend(s *session, err error) {
	l.f.noBack.Add(1)
	l.f.log.Warn("no backend for client", "client", s.src, "pool", s.dial.pool.cfg.Name, "err", err)
	l.end(s)
}

// connectNext connects to the next address of the backend; false when
// every address failed at once (d.err says why).
func (l *loop) connectNext(s *session) bool {
	d := s.dial
	for len(d.addrs) > 0 {
		d.cur = d.addrs[0]
		d.addrs = d.addrs[1:]
		if err := l.connect(s, d.cur); err != nil {
			d.err = fmt.Errorf("dial tcp %s: %w", d.cur, err)
			continue
		}
		return true
	}
	return false
}

// connect starts a non-blocking connect(2) to ap: socket, TCP_NODELAY,
// connect, and the socket joins the epoll set; writability says the
// handshake is done, an error event that it failed.
func (l *loop) connect(s *session, ap netip.AddrPort) error {
	fd, inProgress, call, e := sysConnectTCP(ap)
	if e != 0 {
		return fmt.Errorf("%s: %w", call, e)
	}
	if err := l.register(fd, s, sideBackend); err != nil {
		sysClose(fd)
		return fmt.Errorf("epoll_ctl: %w", err)
	}
	s.bfd, s.up.dst, s.down.src = fd, fd, fd
	if !inProgress {
		l.established(s)
		return nil
	}
	s.state = stateConnecting
	if ct := s.dial.pool.cfg.ConnectTimeout.D(); ct > 0 {
		l.setTimer(s, l.now+int64(ct))
	}
	return nil
}

// connectError handles an error event on a connecting socket.
func (l *loop) connectError(s *session) {
	err := error(unix.ECONNREFUSED)
	if errno, gerr := unix.GetsockoptInt(s.bfd, unix.SOL_SOCKET, unix.SO_ERROR); gerr != nil {
		err = gerr
	} else if errno != 0 {
		err = unix.Errno(errno)
	}
	l.clearTimer(s)
	s.dial.err = fmt.Errorf("dial tcp %s: connect: %w", s.dial.cur, err)
	l.retry(s)
}

// connectTimedOut handles connect_timeout passing (the timer is gone).
func (l *loop) connectTimedOut(s *session) {
	s.dial.err = fmt.Errorf("dial tcp %s: connect: i/o timeout", s.dial.cur)
	l.retry(s)
}

// retry drops the failed backend socket and tries the backend's next
// address, or the next backend.
func (l *loop) retry(s *session) {
	l.closeFd(&s.bfd)
	s.up.dst, s.down.src = -1, -1
	s.up.writable, s.down.readable, s.down.rdhup, s.down.readAll = false, false, false, false
	s.state = stateDialing
	if l.connectNext(s) {
		return
	}
	if l.attemptFailed(s) {
		l.dial(s)
	}
}

// resolution is a backend host name looked up for a session.
type resolution struct {
	s    *session
	d    *dialState
	ips  []netip.Addr
	port uint16
	err  error
}

// resolve looks the backend's host name up in a goroutine (the resolver
// may block) whose answer comes back through the loop's requests; false
// when the address cannot be used at all (d.err says why).
func (l *loop) resolve(s *session) bool {
	d := s.dial
	host, port, err := net.SplitHostPort(d.b.Address())
	if err != nil {
		d.err = fmt.Errorf("proxy: backend address: %w", err)
		return false
	}
	pn, err := strconv.ParseUint(port, 10, 16)
	if err != nil {
		d.err = fmt.Errorf("proxy: backend address %s: port: %w", d.b.Address(), err)
		return false
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(d.until-nanotime()))
	d.cancel = cancel
	s.state = stateDialing
	l.r.dns.Go(func() {
		ips, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
		l.mu.Lock()
		l.resolved = append(l.resolved, resolution{s: s, d: d, ips: ips, port: uint16(pn), err: err})
		l.signalLocked()
		l.mu.Unlock()
	})
	return true
}

// lookedUp connects to the addresses a lookup found.
func (l *loop) lookedUp(res resolution) {
	s, d := res.s, res.d
	if s.state != stateDialing || s.dial != d || d.b == nil || d.cancel == nil {
		return // the session ended meanwhile
	}
	d.cancel()
	d.cancel = nil
	switch {
	case res.err != nil:
		d.err = fmt.Errorf("dial tcp %s: %w", d.b.Address(), res.err)
	case len(res.ips) == 0:
		d.err = fmt.Errorf("dial tcp %s: no addresses", d.b.Address())
	default:
		d.addrs = make([]netip.AddrPort, len(res.ips))
		for i, ip := range res.ips {
			d.addrs[i] = netip.AddrPortFrom(ip, res.port)
		}
		if l.connectNext(s) {
			return
		}
	}
	if l.attemptFailed(s) {
		l.dial(s)
	}
}

// established starts copying once the backend accepted.
func (l *loop) established(s *session) {
	d := s.dial
	b := d.b
	l.clearTimer(s)
	b.connected(time.Duration(nanotime() - d.start))
	if d.key != "" {
		l.f.aff.Store(d.key, b.Address(), d.pool.cfg.Sticky.TTL.D())
	}
	d.b = nil
	s.dial = nil
	s.b = b
	b.Track(s)
	s.up.bytes, s.down.bytes = &b.bytesIn, &b.bytesOut
	s.state = stateOpen
	s.last = l.now
	if d.proxyProto != "" && !l.sendProxyHeader(s, d.proxyProto) {
		l.end(s)
		return
	}
	if s.idle > 0 {
		l.setTimer(s, l.now+int64(s.idle))
	}
	l.serve(s)
}

// sendProxyHeader writes the PROXY protocol header to the new backend
// connection, before any of the client's bytes.
func (l *loop) sendProxyHeader(s *session, version string) bool {
	var dst netip.AddrPort
	if sa, err := unix.Getsockname(s.cfd); err == nil {
		dst = sockaddrAddrPort(sa)
	}
	hdr, err := AppendProxyHeader(nil, version, s.src, dst)
	if err == nil {
		n, e := sysWrite(s.bfd, hdr)
		switch e {
		case 0:
		case unix.EAGAIN:
			n = 0
		default:
			err = e
		}
		if err == nil && n < len(hdr) {
			// A new socket takes a header at once; if not, it waits
			// in the client direction's buffer as data would.
			s.up.buf = l.getBuf()
			s.up.off, s.up.end = 0, copy(s.up.buf[:], hdr[n:])
			s.up.writable = false
		}
	}
	if err != nil {
		l.f.log.Warn("sending PROXY header failed", "backend", s.b.Address(), "err", err)
		return false
	}
	return true
}

// ready records a socket's readiness event and serves the session.
func (l *loop) ready(s *session, side uint8, ev uint32) {
	rd, wr := &s.up, &s.down
	if side == sideBackend {
		rd, wr = &s.down, &s.up
	}
	if ev&(unix.EPOLLIN|unix.EPOLLPRI|unix.EPOLLRDHUP|unix.EPOLLHUP|unix.EPOLLERR) != 0 {
		rd.readable = true
		switch {
		case ev&(unix.EPOLLHUP|unix.EPOLLERR|unix.EPOLLPRI) != 0:
			// A reset (let read(2) tell), or TCP urgent data, at
			// which a read stops short.
			rd.readAll = true
		case ev&unix.EPOLLRDHUP != 0:
			rd.rdhup = true
		}
	}
	if ev&(unix.EPOLLOUT|unix.EPOLLHUP|unix.EPOLLERR) != 0 {
		wr.writable = true
	}
	switch s.state {
	case stateOpen:
		l.serve(s)
	case stateConnecting:
		if side == sideBackend {
			if ev&(unix.EPOLLERR|unix.EPOLLHUP) != 0 {
				l.connectError(s)
			} else if ev&unix.EPOLLOUT != 0 {
				l.established(s)
			}
		}
	}
}

// serve moves what both directions can move now; the session ends when
// both have passed their EOF on, or on an error.
func (l *loop) serve(s *session) {
	err := l.pump(s, &s.up, &s.down)
	if err == nil {
		err = l.pump(s, &s.down, &s.up)
	}
	if err != nil || s.up.shut && s.down.shut {
		l.end(s)
	}
}

// pump moves one direction: what was read is written before anything more
// is read (so a slow destination stops reading from the source, and TCP's
// flow control reaches the sender), one read(2) and one write(2) per
// exchange through a buffer taken only while data is in flight; once a
// read fills the buffer the direction is bulk and moves with splice(2)
// through a pipe, held while it carries data. At the source's EOF the
// destination is shut down for writing (half-close), unless the other
// direction has ended too: then both sockets are simply closed.
func (l *loop) pump(s *session, fl, other *flow) error {
	moved := 0
	for {
		switch {
		case fl.end > fl.off:
			if !fl.writable {
				return nil
			}
			n, err := sysWrite(fl.dst, fl.buf[fl.off:fl.end])
			if err != 0 {
				if err == unix.EAGAIN {
					fl.writable = false
					return nil
				}
				if err == unix.EINTR {
					continue
				}
				return err
			}
			fl.off += n
			if fl.off == fl.end {
				l.putBuf(fl.buf)
				fl.buf, fl.off, fl.end = nil, 0, 0
			}
			continue
		case fl.inPipe > 0:
			if !fl.writable {
				return nil
			}
			n, err := sysSplice(fl.pipe.r, fl.dst, fl.inPipe)
			if err != 0 {
				if err == unix.EAGAIN {
					fl.writable = false
					return nil
				}
				if err == unix.EINTR {
					continue
				}
				return err
			}
			fl.inPipe -= n
			continue
		case fl.eof:
			l.dropPipe(fl)
			if !fl.shut {
				fl.shut = true
				if !other.shut {
					if err := sysShutdown(fl.dst, unix.SHUT_WR); err != 0 {
						return err
					}
				}
			}
			return nil
		case !fl.readable:
			l.dropPipe(fl)
			return nil
		case moved >= flowBudget:
			l.requeue(s)
			return nil
		}
		if fl.bulk {
			if !fl.hasPipe {
				p, err := l.getPipe()
				if err != nil {
					fl.bulk = false // no pipe to be had: through the buffer
					continue
				}
				fl.pipe, fl.hasPipe = p, true
			}
			n, err := sysSplice(fl.src, fl.pipe.w, fl.pipe.size)
			switch {
			case err == unix.EAGAIN:
				fl.readable = false // the pipe is empty: the socket is
			case err == unix.EINTR:
			case err != 0:
				return err
			case n == 0:
				fl.eof = true
			default:
				fl.inPipe = n
				moved += n
				fl.bytes.Add(uint64(n))
				s.last = l.now
			}
			continue
		}
		if fl.buf == nil {
			fl.buf = l.getBuf()
		}
		n, err := sysRead(fl.src, fl.buf[:])
		switch {
		case err == unix.EAGAIN:
			fl.readable = false
		case err == unix.EINTR:
		case err != 0:
			return err
		case n == 0:
			fl.eof = true
		default:
			fl.off, fl.end = 0, n
			moved += n
			fl.bytes.Add(uint64(n))
			s.last = l.now
			switch {
			case n == len(fl.buf):
				fl.bulk = true // more is likely queued: a bulk transfer
			case fl.readAll:
				// Read on: no further event would come to say
				// what is left (EOF, the error, data past urgent data).
			case fl.rdhup:
				fl.eof = true // the queue is empty and the peer said FIN
			default:
				// The queue is empty: the next arrival is a new
				// edge-triggered event, no read(2) to learn EAGAIN.
				fl.readable = false
			}
		}
		if fl.end == 0 {
			l.putBuf(fl.buf)
			fl.buf = nil
		}
	}
}

// dropPipe gives an empty pipe back: an idle direction holds none.
func (l *loop) dropPipe(fl *flow) {
	if fl.hasPipe && fl.inPipe == 0 {
		l.putPipe(fl.pipe)
		fl.hasPipe = false
	}
}

// end closes the session and gives back all it holds.
func (l *loop) end(s *session) {
	if s.state == stateClosed {
		return
	}
	s.state = stateClosed
	l.clearTimer(s)
	l.closeFd(&s.cfd)
	l.closeFd(&s.bfd)
	for _, fl := range []*flow{&s.up, &s.down} {
		if fl.buf != nil {
			l.putBuf(fl.buf)
			fl.buf = nil
		}
		if fl.hasPipe {
			if fl.inPipe > 0 {
				fl.pipe.close() // bytes nobody will read
			} else {
				l.putPipe(fl.pipe)
			}
			fl.hasPipe = false
		}
	}
	if d := s.dial; d != nil {
		if d.cancel != nil {
			d.cancel()
			d.cancel = nil
		}
		if d.b != nil {
			d.b.Release()
			d.b = nil
		}
	}
	if b := s.b; b != nil {
		b.Untrack(s)
		b.Release()
	}
	l.f.gate.Done()
	l.r.open.Done()
	if l.r.paused.Load() > 0 {
		l.r.wakePaused()
	}
}
