package health

import (
	"os"
	"sync"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// fdWaker is a waker on a timerfd (timerfd_create(2)) that schedule
// waits for in Go's network poller. A goroutine woken by the poller for a
// ready file runs on the thread that was polling; one woken by a Go timer
// also makes the runtime wake a second thread to look for more work, and
// the runtime's sysmon thread sleeps only until the next Go timer. At a
// hundred wake-ups a second those extra thread wake-ups cost more CPU than
// the probes' own system calls: 1000 tcp checks a second took 3.6 % of a
// core on Go timers, 2.8 % on the timerfd (BenchmarkProbeCPU).
type fdWaker struct {
	f  *os.File
	rc syscall.RawConn

	// Reused by every call, so that waking up allocates nothing.
	mu     sync.Mutex // guards its, for arm and kick
	its    unix.ItimerSpec
	setFn  func(fd uintptr)
	buf    [8]byte // expirations, which nobody needs; wait's only
	readFn func(fd uintptr) bool
}

// newWaker returns an fdWaker for the pool's built-in checks, a
// timerWaker for a custom Prober or when timerfd is missing.
func (p *Pool) newWaker() waker {
	if p.customProber {
		return newTimerWaker()
	}
	fd, err := unix.TimerfdCreate(unix.CLOCK_MONOTONIC, unix.TFD_NONBLOCK|unix.TFD_CLOEXEC)
	if err != nil {
		p.log.Warn("no timerfd, health checks wake up on Go timers", "error", err)
		return newTimerWaker()
	}
	f := os.NewFile(uintptr(fd), "health timer") // f owns fd, registered with the poller
	rc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return newTimerWaker()
	}
	w := &fdWaker{f: f, rc: rc}
	w.setFn = func(fd uintptr) {
		_, _, _ = unix.RawSyscall6(unix.SYS_TIMERFD_SETTIME, fd, 0, uintptr(unsafe.Pointer(&w.its)), 0, 0, 0)
	}
	w.readFn = func(fd uintptr) bool {
		_, _, e := unix.RawSyscall(unix.SYS_READ, fd, uintptr(unsafe.Pointer(&w.buf[0])), uintptr(len(w.buf)))
		return e != unix.EAGAIN
	}
	return w
}

// set arms the timer to expire after d (at least 1 ns: zero disarms) or
// disarms it, with a raw system call (see rawSocket). Closed, it does
// nothing.
func (w *fdWaker) set(d time.Duration, disarm bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.its = unix.ItimerSpec{}
	if !disarm {
		w.its.Value = unix.NsecToTimespec(max(int64(d), 1))
	}
	_ = w.rc.Control(w.setFn)
}

func (w *fdWaker) arm(at time.Time) { w.set(time.Until(at), at.IsZero()) }

func (w *fdWaker) kick() { w.set(0, false) }

// wait reads the timerfd, and while it has not expired waits for it in
// the poller. Closed, it returns at once.
func (w *fdWaker) wait() { _ = w.rc.Read(w.readFn) }

func (w *fdWaker) close() { w.f.Close() }
