//go:build linux

package proxy

import (
	"container/heap"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// The L4 data path on Linux is a reactor, HAProxy's and nginx's design: a
// few event loops per frontend, each a goroutine that owns an epoll(7)
// instance and every socket of its sessions. A session is a plain struct
// driven by edge-triggered readiness events: accept4(2), a non-blocking
// connect(2) to the backend, then per direction one read(2) and one
// write(2) per exchange (splice(2) through a pipe once a transfer is
// bulk), shutdown(2) to pass a half-close on, close(2); connect and idle
// timeouts are a heap of deadlines the loop checks. No goroutine, buffer
// or pipe is held while a connection is idle. An idle loop parks in Go's
// netpoller, which watches its epoll descriptor: no thread blocks.

const (
	maxLoops   = 8       // event loops per frontend, at most (and at most GOMAXPROCS)
	maxEvents  = 256     // readiness events taken per epoll_wait
	flowBudget = 2 << 20 // bytes a direction moves per wake-up before others get a turn
	spareBufs  = 64      // idle copy buffers a loop keeps
	sparePipes = 16      // idle splice pipes a loop keeps
	pipeSize   = 1 << 20 // splice pipe capacity asked for (F_SETPIPE_SZ), as Go's io.Copy does
)

// clockBase anchors the loops' monotonic clock.
var clockBase = time.Now()

// nanotime is the loops' clock: monotonic nanoseconds.
func nanotime() int64 { return int64(time.Since(clockBase)) }

// reactor is the Linux tcpEngine: the frontend's event loops.
type reactor struct {
	f     *TCPFrontend
	loops []*loop
	run   sync.WaitGroup // the loops' goroutines
	dns   sync.WaitGroup // host-name lookups of backends
	open  sync.WaitGroup // sessions
	// started is set by start, under the frontend's mutex, before Close.
	started bool
	// paused counts loops that stopped accepting at max_connections; a
	// session that ends then wakes them.
	paused atomic.Int32
}

func newTCPEngine(f *TCPFrontend) (tcpEngine, error) {
	rc, err := f.ln.SyscallConn()
	if err != nil {
		return nil, err
	}
	r := &reactor{f: f}
	n := min(runtime.GOMAXPROCS(0), maxLoops)
	var serr error
	err = rc.Control(func(fd uintptr) {
		// Accepted sockets inherit TCP_NODELAY from the listener: one
		// setsockopt per frontend instead of one per connection.
		if serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_NODELAY, 1); serr != nil {
			return
		}
		for range n {
			// Each loop owns a duplicate of the listening socket, so it
			// can stop accepting (close it) without racing Go's Close.
			lfd, err := unix.FcntlInt(fd, unix.F_DUPFD_CLOEXEC, 0)
			if err != nil {
				serr = err
				return
			}
			l, err := newLoop(r, lfd, n > 1)
			if err != nil {
				serr = err
				return
			}
			r.loops = append(r.loops, l)
		}
	})
	if err == nil {
		err = serr
	}
	if err != nil {
		for _, l := range r.loops {
			l.closeAll()
		}
		return nil, fmt.Errorf("event loop: %w", err)
	}
	return r, nil
}

func (r *reactor) start() {
	r.started = true
	for _, l := range r.loops {
		r.run.Go(l.run)
	}
}

func (r *reactor) wake() {
	for _, l := range r.loops {
		l.request(reqWake)
	}
}

// stopAccepting has every loop close its listening socket and waits until
// they have: no session starts after it returns.
func (r *reactor) stopAccepting() {
	if !r.started {
		for _, l := range r.loops {
			l.exit()
		}
		return
	}
	for _, l := range r.loops {
		l.request(reqStopAccept)
	}
	for _, l := range r.loops {
		<-l.noAccept
	}
}

func (r *reactor) waitSessions() { r.open.Wait() }

func (r *reactor) cut() {
	for _, l := range r.loops {
		l.request(reqCutAll)
	}
}

func (r *reactor) stop() {
	for _, l := range r.loops {
		l.request(reqStop)
	}
	r.run.Wait()
	r.dns.Wait() // every lookup was cancelled with its session
	for _, l := range r.loops {
		l.closeAll()
	}
}

// wakePaused makes loops that stopped accepting at max_connections look at
// the limit again.
func (r *reactor) wakePaused() {
	for _, l := range r.loops {
		if l.isPaused.Load() {
			l.request(reqWake)
		}
	}
}

// Requests other goroutines make of a loop.
const (
	reqWake       = 1 << iota // look at max_connections again
	reqCutAll                 // close every session
	reqStopAccept             // close the listening socket
	reqStop                   // end the loop
)

// fdRef is what a loop knows of one of its descriptors: the session and
// side it belongs to, and the generation it was registered with, carried
// in every epoll event so that an event of a closed descriptor whose
// number was reused in the same batch is recognised and dropped.
type fdRef struct {
	s    *session
	gen  uint32
	side uint8
}

const (
	sideClient = iota
	sideBackend
)

// loop is one event loop: an epoll instance, the sessions it accepted and
// everything they hold. Only its goroutine touches its fields, except the
// requests below mu and the atomics.
type loop struct {
	r      *reactor
	f      *TCPFrontend
	epfd   int
	pollf  *os.File        // epfd, watched by Go's netpoller
	pollrc syscall.RawConn // pollf's
	evfd   int             // eventfd(2): other goroutines wake the loop with a request
	lfd    int             // this loop's duplicate of the listening socket; -1 once closed

	exclusive bool  // several loops share the listening socket
	listening bool  // lfd is in the epoll set
	paused    bool  // not listening because of max_connections
	retryAt   int64 // after an accept error, accept again at this time (0: not waiting)
	backoff   time.Duration

	fds      []fdRef // by descriptor number
	gen      uint32
	timers   timerHeap
	now      int64      // the clock at the last wake-up
	deadline int64      // pollf's read deadline (clock; -1: none)
	again    []*session // sessions with work left after their share
	spare    []*session // again's other half
	bufs     []*[copyBuf]byte
	pipes    []pipe
	events   [maxEvents]unix.EpollEvent
	quit     bool

	isPaused atomic.Bool   // paused, for wakePaused
	noAccept chan struct{} // closed when lfd is closed
	signaled atomic.Bool   // evfd was written and not read yet

	mu       sync.Mutex // guards the requests
	reqs     int
	cuts     []*session
	resolved []resolution
}

func newLoop(r *reactor, lfd int, shared bool) (_ *loop, err error) {
	l := &loop{r: r, f: r.f, lfd: lfd, epfd: -1, evfd: -1, exclusive: shared, deadline: -1, noAccept: make(chan struct{})}
	defer func() {
		if err != nil {
			l.closeAll() // lfd included: the loop owns it from here
		}
	}()
	if l.epfd, err = unix.EpollCreate1(unix.EPOLL_CLOEXEC); err != nil {
		return nil, fmt.Errorf("epoll_create1: %w", err)
	}
	// Non-blocking, the epoll descriptor joins Go's netpoller as a file.
	if err = unix.SetNonblock(l.epfd, true); err != nil {
		return nil, fmt.Errorf("epoll: %w", err)
	}
	l.pollf = os.NewFile(uintptr(l.epfd), "epoll")
	if l.pollrc, err = l.pollf.SyscallConn(); err != nil {
		return nil, fmt.Errorf("epoll: %w", err)
	}
	if l.evfd, err = unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC); err != nil {
		return nil, fmt.Errorf("eventfd: %w", err)
	}
	ev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(l.evfd)}
	if err = unix.EpollCtl(l.epfd, unix.EPOLL_CTL_ADD, l.evfd, &ev); err != nil {
		return nil, fmt.Errorf("epoll_ctl: %w", err)
	}
	if err = l.listen(); err != nil {
		return nil, fmt.Errorf("epoll_ctl: %w", err)
	}
	return l, nil
}

// listen puts the listening socket in the epoll set. With several loops
// EPOLLEXCLUSIVE wakes one of them per connection, not all.
func (l *loop) listen() error {
	events := uint32(unix.EPOLLIN)
	if l.exclusive {
		events |= unix.EPOLLEXCLUSIVE
	}
	ev := unix.EpollEvent{Events: events, Fd: int32(l.lfd)}
	if err := unix.EpollCtl(l.epfd, unix.EPOLL_CTL_ADD, l.lfd, &ev); err != nil {
		return err
	}
	l.listening = true
	return nil
}

// unlisten takes the listening socket out of the epoll set.
func (l *loop) unlisten() {
	if l.listening {
		sysEpollCtl(l.epfd, unix.EPOLL_CTL_DEL, l.lfd, nil)
		l.listening = false
	}
}

// closeAll releases the loop's descriptors once its goroutine is gone.
func (l *loop) closeAll() {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, fd := range []*int{&l.lfd, &l.evfd} {
		if *fd >= 0 {
			unix.Close(*fd)
			*fd = -1
		}
	}
	if l.pollf != nil {
		l.pollf.Close() // and epfd with it
		l.pollf = nil
	} else if l.epfd >= 0 {
		unix.Close(l.epfd)
	}
	l.epfd = -1
	for _, p := range l.pipes {
		p.close()
	}
	l.pipes = nil
}

// request asks the loop for something (reqWake...) from any goroutine.
func (l *loop) request(r int) {
	l.mu.Lock()
	l.reqs |= r
	l.signalLocked()
	l.mu.Unlock()
}

// cutSession asks the loop to close s.
func (l *loop) cutSession(s *session) {
	l.mu.Lock()
	l.cuts = append(l.cuts, s)
	l.signalLocked()
	l.mu.Unlock()
}

// signalLocked wakes the loop, once per batch of requests; l.mu is held,
// so the eventfd cannot be closed meanwhile (closeAll).
func (l *loop) signalLocked() {
	if l.evfd >= 0 && l.signaled.CompareAndSwap(false, true) {
		var one [8]byte
		binary.NativeEndian.PutUint64(one[:], 1)
		unix.Write(l.evfd, one[:])
	}
}

func (l *loop) run() {
	defer l.exit()
	for !l.quit {
		n, err := l.poll()
		l.now = nanotime()
		if err != nil {
			// Only a bug gets here (EBADF, EFAULT, EINVAL): say so and
			// close what the loop holds rather than spin.
			l.f.log.Error("event loop failed", "err", err)
			return
		}
		for i := range n {
			l.event(&l.events[i])
		}
		l.fireTimers()
		l.runAgain()
	}
}

// poll returns the ready events. With nothing ready it parks the goroutine
// in Go's netpoller, which watches the loop's epoll descriptor, until an
// event or the next timer: the loop never blocks a thread, and holds no P
// (Go's scheduler context) while idle.
func (l *loop) poll() (n int, err error) {
	if len(l.again) > 0 {
		return l.epollWait()
	}
	// The wake-up deadline only moves when it must: earlier for a nearer
	// timer, or once passed. One that is early (its timer is gone) costs
	// a spurious wake-up, not a timer update per connection.
	next := l.nextTimer()
	if next >= 0 && (l.deadline < 0 || next < l.deadline) || l.deadline == deadlinePassed {
		dl := time.Time{}
		if next >= 0 {
			dl = clockBase.Add(time.Duration(next))
		}
		if err := l.pollf.SetReadDeadline(dl); err != nil {
			return 0, err
		}
		l.deadline = next
	}
	rerr := l.pollrc.Read(func(uintptr) bool {
		n, err = l.epollWait()
		return n > 0 || err != nil
	})
	if errors.Is(rerr, os.ErrDeadlineExceeded) {
		l.deadline = deadlinePassed
		return 0, nil
	}
	if rerr != nil {
		return 0, rerr
	}
	return n, err
}

// deadlinePassed is loop.deadline once it has passed: every wait would end
// at once until it is set again.
const deadlinePassed = -2

// epollWait takes the ready events without waiting.
func (l *loop) epollWait() (int, error) {
	n, err := sysEpollPoll(l.epfd, l.events[:])
	switch err {
	case 0:
		return n, nil
	case unix.EINTR:
		return 0, nil
	}
	return 0, err
}

// exit closes every session still open when the loop ends.
func (l *loop) exit() {
	l.endAll()
	l.closeListener()
}

// closeListener stops accepting for good.
func (l *loop) closeListener() {
	if l.lfd < 0 {
		return
	}
	l.unlisten()
	l.setPaused(false)
	unix.Close(l.lfd)
	l.lfd = -1
	l.retryAt = 0
	close(l.noAccept)
}

// nextTimer returns the clock of the next timer, -1 for none.
func (l *loop) nextTimer() int64 {
	next := int64(-1)
	if len(l.timers) > 0 {
		next = l.timers[0].at
	}
	if l.retryAt != 0 && (next < 0 || l.retryAt < next) {
		next = l.retryAt
	}
	return next
}

func (l *loop) event(ev *unix.EpollEvent) {
	fd, gen := int(ev.Fd), uint32(ev.Pad)
	if gen == 0 {
		switch fd {
		case l.evfd:
			l.requests()
		case l.lfd:
			l.accept()
		}
		return
	}
	if fd >= len(l.fds) || l.fds[fd].gen != gen {
		return // closed in this batch
	}
	ref := l.fds[fd]
	l.ready(ref.s, ref.side, ev.Events)
}

// requests runs what other goroutines asked for.
func (l *loop) requests() {
	var b [8]byte
	unix.Read(l.evfd, b[:])
	l.signaled.Store(false)
	l.mu.Lock()
	reqs, cuts, resolved := l.reqs, l.cuts, l.resolved
	l.reqs, l.cuts, l.resolved = 0, nil, nil
	l.mu.Unlock()
	for _, s := range cuts {
		l.end(s)
	}
	for _, res := range resolved {
		l.lookedUp(res)
	}
	if reqs&reqCutAll != 0 {
		l.endAll()
	}
	if reqs&reqStopAccept != 0 {
		l.closeListener()
	}
	if reqs&reqWake != 0 {
		l.resume()
	}
	if reqs&reqStop != 0 {
		l.quit = true
	}
}

// endAll closes every session of the loop.
func (l *loop) endAll() {
	for _, ref := range l.fds {
		if ref.s != nil && ref.side == sideClient {
			l.end(ref.s)
		}
	}
}

// room reports whether the frontend is below max_connections.
func (l *loop) room() bool {
	max := int64(l.f.cfg.Load().MaxConnections)
	return max <= 0 || l.f.gate.Active.Load() < max
}

// reserve counts one more active connection if the frontend is below
// max_connections, before accept4: loops accepting at once cannot take
// the frontend past its limit.
func (l *loop) reserve() bool {
	g := l.f.gate
	max := int64(l.f.cfg.Load().MaxConnections)
	if g.Active.Add(1) > max && max > 0 {
		g.Active.Add(-1)
		return false
	}
	return true
}

// accept takes one connection from the listen queue, while the frontend
// has room: at max_connections the loop stops listening and clients wait
// in the kernel's queue, as with Gate. The listening socket is
// level-triggered, so the next epoll_wait reports it again while
// connections wait: no accept4 call is spent to learn EAGAIN.
func (l *loop) accept() {
	for {
		if !l.reserve() {
			l.unlisten()
			l.setPaused(true)
			return
		}
		fd, src, err := sysAccept4(l.lfd)
		if err == 0 {
			l.backoff = 0
			l.f.gate.AcceptOK()
			l.open(fd, src)
			return
		}
		l.f.gate.Active.Add(-1)
		switch err {
		case unix.EAGAIN: // another loop took it
		case unix.EINTR, unix.ECONNABORTED:
			continue
		default:
			// EMFILE and friends: back off as net/http does, never spin.
			l.f.gate.AcceptFailed()
			l.backoff = min(max(2*l.backoff, 5*time.Millisecond), time.Second)
			l.f.log.Error("accept failed", "err", err, "retry_in", l.backoff)
			l.unlisten()
			l.retryAt = l.now + int64(l.backoff)
		}
		return
	}
}

// setPaused records whether the loop stopped accepting at max_connections;
// the frontend counts the first loop to stop as accepting paused.
func (l *loop) setPaused(p bool) {
	if l.paused == p {
		return
	}
	l.paused = p
	l.isPaused.Store(p)
	if !p {
		l.r.paused.Add(-1)
		return
	}
	if l.r.paused.Add(1) == 1 {
		l.f.gate.Full.Add(1)
		l.f.log.Warn("max_connections reached, accepting paused", "max_connections", l.f.cfg.Load().MaxConnections)
	}
}

// resume listens again if the loop stopped for max_connections that has
// room now, or after an accept error's back-off.
func (l *loop) resume() {
	if l.listening || l.lfd < 0 || l.retryAt != 0 || !l.room() {
		return
	}
	if err := l.listen(); err != nil {
		l.f.log.Error("listening again failed", "err", err)
		return
	}
	l.setPaused(false)
}

// register adds a session's socket to the epoll set, edge-triggered for
// reading and writing at once: no epoll_ctl call follows until close.
func (l *loop) register(fd int, s *session, side uint8) error {
	l.gen++
	if l.gen == 0 {
		l.gen = 1
	}
	ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLPRI | unix.EPOLLOUT | unix.EPOLLRDHUP | unix.EPOLLET, Fd: int32(fd), Pad: int32(l.gen)}
	if err := sysEpollCtl(l.epfd, unix.EPOLL_CTL_ADD, fd, &ev); err != 0 {
		return err
	}
	for fd >= len(l.fds) {
		l.fds = append(l.fds, fdRef{})
	}
	l.fds[fd] = fdRef{s: s, gen: l.gen, side: side}
	return nil
}

// closeFd closes a session's socket (which leaves the epoll set with it)
// and sets *fd to -1.
func (l *loop) closeFd(fd *int) {
	if *fd < 0 {
		return
	}
	if *fd < len(l.fds) {
		l.fds[*fd] = fdRef{}
	}
	sysClose(*fd)
	*fd = -1
}

// requeue has s served again after this round's events: it used its share.
func (l *loop) requeue(s *session) {
	if !s.queued {
		s.queued = true
		l.again = append(l.again, s)
	}
}

func (l *loop) runAgain() {
	if len(l.again) == 0 {
		return
	}
	list := l.again
	l.again = l.spare[:0]
	for i, s := range list {
		s.queued = false
		list[i] = nil
		if s.state == stateOpen {
			l.serve(s)
		}
	}
	l.spare = list[:0]
}

// fireTimers runs connect and idle timeouts that are due, and ends an
// accept back-off.
func (l *loop) fireTimers() {
	for len(l.timers) > 0 && l.timers[0].at <= l.now {
		s := l.timers[0]
		switch s.state {
		case stateConnecting:
			heap.Pop(&l.timers)
			l.connectTimedOut(s)
		case stateOpen:
			// Idle check, lazily: traffic only records when it
			// happened, and the timer moves on when it fires.
			if due := s.last + int64(s.idle); due > l.now {
				s.at = due
				heap.Fix(&l.timers, 0)
			} else {
				l.end(s)
			}
		default:
			heap.Pop(&l.timers)
		}
	}
	if l.retryAt != 0 && l.retryAt <= l.now {
		l.retryAt = 0
		l.resume()
	}
}

// setTimer makes the loop look at s at time at (connect or idle timeout).
func (l *loop) setTimer(s *session, at int64) {
	s.at = at
	if s.ti >= 0 {
		heap.Fix(&l.timers, s.ti)
		return
	}
	heap.Push(&l.timers, s)
}

func (l *loop) clearTimer(s *session) {
	if s.ti >= 0 {
		heap.Remove(&l.timers, s.ti)
	}
}

// timerHeap orders sessions by their timer (container/heap).
type timerHeap []*session

func (h timerHeap) Len() int           { return len(h) }
func (h timerHeap) Less(i, j int) bool { return h[i].at < h[j].at }
func (h timerHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].ti, h[j].ti = i, j
}
func (h *timerHeap) Push(x any) {
	s := x.(*session)
	s.ti = len(*h)
	*h = append(*h, s)
}
func (h *timerHeap) Pop() any {
	old := *h
	s := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	s.ti = -1
	return s
}

// getBuf returns a copy buffer, spare or new.
func (l *loop) getBuf() *[copyBuf]byte {
	if n := len(l.bufs); n > 0 {
		b := l.bufs[n-1]
		l.bufs = l.bufs[:n-1]
		return b
	}
	return new([copyBuf]byte)
}

func (l *loop) putBuf(b *[copyBuf]byte) {
	if len(l.bufs) < spareBufs {
		l.bufs = append(l.bufs, b)
	}
}

// pipe is a splice pipe: bytes go from a socket into w and from r to the
// other socket, never through user space.
type pipe struct{ r, w, size int }

func (p pipe) close() {
	sysClose(p.r)
	sysClose(p.w)
}

// getPipe returns an empty pipe, spare or new.
func (l *loop) getPipe() (pipe, error) {
	if n := len(l.pipes); n > 0 {
		p := l.pipes[n-1]
		l.pipes = l.pipes[:n-1]
		return p, nil
	}
	var fds [2]int
	if err := unix.Pipe2(fds[:], unix.O_NONBLOCK|unix.O_CLOEXEC); err != nil {
		return pipe{}, err
	}
	p := pipe{r: fds[0], w: fds[1], size: 64 << 10}
	// A larger pipe moves more per pair of calls; the default 64 KiB
	// works too when the system refuses.
	if n, err := unix.FcntlInt(uintptr(p.w), unix.F_SETPIPE_SZ, pipeSize); err == nil {
		p.size = n
	}
	return p, nil
}

// putPipe keeps an empty pipe for later or closes it.
func (l *loop) putPipe(p pipe) {
	if len(l.pipes) < sparePipes {
		l.pipes = append(l.pipes, p)
		return
	}
	p.close()
}

// sockaddrAddrPort converts a socket's own address (getsockname(2)) as
// Go's net package does.
func sockaddrAddrPort(sa unix.Sockaddr) netip.AddrPort {
	switch a := sa.(type) {
	case *unix.SockaddrInet4:
		return netip.AddrPortFrom(netip.AddrFrom4(a.Addr), uint16(a.Port))
	case *unix.SockaddrInet6:
		ip := netip.AddrFrom16(a.Addr)
		if a.ZoneId != 0 {
			ip = ip.WithZone(zoneName(a.ZoneId))
		}
		return netip.AddrPortFrom(ip, uint16(a.Port))
	}
	return netip.AddrPort{}
}

// zoneName is the name of the interface an IPv6 scope id stands for, as
// `ip link` shows it (the number when the interface is gone).
func zoneName(id uint32) string {
	if ifc, err := net.InterfaceByIndex(int(id)); err == nil {
		return ifc.Name
	}
	return strconv.FormatUint(uint64(id), 10)
}

// zoneIndex is the scope id of an IPv6 zone: an interface name or number.
func zoneIndex(zone string) uint32 {
	if ifc, err := net.InterfaceByName(zone); err == nil {
		return uint32(ifc.Index)
	}
	n, _ := strconv.ParseUint(zone, 10, 32)
	return uint32(n)
}
