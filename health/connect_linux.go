package health

import (
	"context"
	"errors"
	"net/netip"
	"os"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// rawAddr is a backend address that the raw connect path handles: an IP
// address and port without an IPv6 zone, as the struct sockaddr that
// connect(2) takes. It is built once per backend.
type rawAddr struct {
	family int
	in4    unix.RawSockaddrInet4
	in6    unix.RawSockaddrInet6
}

// parseRawAddr returns addr as a rawAddr, or nil for an address the raw
// path leaves to net.Dialer (a host name, an IPv6 zone).
func parseRawAddr(addr string) *rawAddr {
	ap, err := netip.ParseAddrPort(addr)
	if err != nil || ap.Addr().Zone() != "" {
		return nil
	}
	port := [2]byte{byte(ap.Port() >> 8), byte(ap.Port())} // network byte order
	a := &rawAddr{family: unix.AF_INET6}
	if ip := ap.Addr().Unmap(); ip.Is4() {
		a.family = unix.AF_INET
		a.in4 = unix.RawSockaddrInet4{Family: unix.AF_INET, Addr: ip.As4()}
		copy((*[2]byte)(unsafe.Pointer(&a.in4.Port))[:], port[:])
	} else {
		a.in6 = unix.RawSockaddrInet6{Family: unix.AF_INET6, Addr: ap.Addr().As16()}
		copy((*[2]byte)(unsafe.Pointer(&a.in6.Port))[:], port[:])
	}
	return a
}

// sockaddr returns the address and length that connect(2) takes.
func (a *rawAddr) sockaddr() (unsafe.Pointer, uintptr) {
	if a.family == unix.AF_INET {
		return unsafe.Pointer(&a.in4), unix.SizeofSockaddrInet4
	}
	return unsafe.Pointer(&a.in6), unix.SizeofSockaddrInet6
}

// lingerReset is SO_LINGER on with a zero timeout: close(2) then ends the
// connection with a reset, as HAProxy ends its tcp checks, so that a probe
// costs no FIN exchange and leaves no TIME_WAIT socket behind.
var lingerReset = unix.Linger{Onoff: 1, Linger: 0}

// Results of the raw connect that allocate nothing.
var (
	connected = Result{OK: true, Text: "connected"}
	refused   = Result{Text: "connect: " + unix.ECONNREFUSED.Error()}
)

// The raw connect path makes its system calls with RawSyscall, outside
// the Go scheduler's entersyscall/exitsyscall: none of them can block (the
// socket is non-blocking and closes with a reset, which close(2) sends
// without waiting), they take microseconds, and a goroutine entering a
// system call wakes the runtime's sysmon thread from its idle sleep, which
// then polls every 20 µs while the goroutine runs: for checks that wake up
// a hundred times a second that polling cost more CPU than the probes'
// own system calls (BenchmarkProbeCPU).

func rawSocket(family int) (int, unix.Errno) {
	fd, _, e := unix.RawSyscall(unix.SYS_SOCKET, uintptr(family), unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	return int(fd), e
}

func rawSetLinger(fd int) unix.Errno {
	_, _, e := unix.RawSyscall6(unix.SYS_SETSOCKOPT, uintptr(fd), unix.SOL_SOCKET, unix.SO_LINGER,
		uintptr(unsafe.Pointer(&lingerReset)), unsafe.Sizeof(lingerReset), 0)
	return e
}

func rawConnect(fd int, a *rawAddr) unix.Errno {
	sa, n := a.sockaddr()
	_, _, e := unix.RawSyscall(unix.SYS_CONNECT, uintptr(fd), uintptr(sa), n)
	return e
}

func rawClose(fd int) { _, _, _ = unix.RawSyscall(unix.SYS_CLOSE, uintptr(fd), 0, 0) }

// startConnect begins the "tcp" check of a: socket(2) with SO_LINGER 0
// and a non-blocking connect(2). On loopback and to a closed local port
// the handshake is over when connect returns; then done is true, r is the
// result and the socket is closed already. Otherwise fd is connecting: the
// caller waits for it (connectState) and closes it.
func startConnect(a *rawAddr) (r Result, fd int, done bool) {
	r, fd, done = openConnect(a)
	if done && fd >= 0 {
		rawClose(fd)
		fd = -1
	}
	return r, fd, done
}

// openConnect is startConnect for a check that goes on to talk over the
// connection: a socket it connected at once stays open (fd), one that
// failed is closed (fd -1).
func openConnect(a *rawAddr) (r Result, fd int, done bool) {
	fd, e := rawSocket(a.family)
	if e != 0 {
		return Result{Text: "socket: " + e.Error()}, -1, true
	}
	if e := rawSetLinger(fd); e != 0 {
		rawClose(fd)
		return Result{Text: "setsockopt: " + e.Error()}, -1, true
	}
	switch e := rawConnect(fd, a); e {
	case unix.EINPROGRESS:
		r, done = connectState(fd, a)
	case 0:
		r, done = connected, true
	default:
		r, done = connectError(e), true
	}
	if done && !r.OK {
		rawClose(fd)
		fd = -1
	}
	return r, fd, done
}

// connectState asks a connecting socket how its connect went, in one
// system call: connect(2) again returns 0 once the handshake is over
// (EISCONN if asked once more), EALREADY while it is under way, and the
// error that ended it otherwise ("connection refused"). done is false
// while it is under way.
func connectState(fd int, a *rawAddr) (r Result, done bool) {
	switch e := rawConnect(fd, a); e {
	case 0, unix.EISCONN:
		return connected, true
	case unix.EALREADY, unix.EINPROGRESS, unix.EINTR:
		return Result{}, false
	default:
		return connectError(e), true
	}
}

// connectError is the text of a failed connect: "connect: connection
// refused", as net.Dialer words it.
func connectError(e unix.Errno) Result {
	if e == unix.ECONNREFUSED {
		return refused
	}
	return Result{Text: "connect: " + e.Error()}
}

// waitConnect waits in Go's poller for connecting socket fd, until ctx
// ends, and closes fd.
func waitConnect(ctx context.Context, fd int, a *rawAddr, timeout time.Duration) Result {
	f := os.NewFile(uintptr(fd), "health check") // registers fd with the poller; f owns it now
	defer f.Close()
	return waitWritable(ctx, f, a, timeout)
}

// waitWritable waits in Go's poller until the connect of f is over or ctx
// ends, and returns its result.
func waitWritable(ctx context.Context, f *os.File, a *rawAddr, timeout time.Duration) Result {
	rc, err := f.SyscallConn()
	if err != nil {
		return Result{Text: "connect: " + err.Error()}
	}
	if dl, has := ctx.Deadline(); has {
		_ = f.SetWriteDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { _ = f.SetWriteDeadline(time.Unix(1, 0)) })
	defer stop()
	var r Result
	werr := rc.Write(func(fd uintptr) bool {
		var done bool
		r, done = connectState(int(fd), a)
		return done
	})
	switch {
	case errors.Is(werr, os.ErrDeadlineExceeded):
		return Result{Text: "timeout after " + timeout.String()}
	case werr != nil:
		return Result{Text: "connect: " + werr.Error()}
	}
	return r
}

// connectProbe is the "tcp" check on Linux for an IP:port address: a
// non-blocking connect(2) that ends with a reset (startConnect), waited
// for in Go's poller when it does not complete at once. It makes fewer
// system calls than net.Dialer and allocates less. ok is false for an
// address it does not handle (a host name, an IPv6 zone), which the caller
// dials with net.Dialer.
func connectProbe(ctx context.Context, addr string, timeout time.Duration) (r Result, ok bool) {
	a := parseRawAddr(addr)
	if a == nil {
		return Result{}, false
	}
	r, fd, done := startConnect(a)
	if done {
		return r, true
	}
	return waitConnect(ctx, fd, a, timeout), true
}

// dialCheck connects to addr for a check that talks over the connection,
// by the raw path for an IP address (closed with a reset, like the tcp
// check) and net.Dialer otherwise. The connection is in Go's poller, so
// deadlines work; c is nil when the connect failed, and r says why.
func dialCheck(ctx context.Context, addr string, timeout time.Duration) (c checkConn, r Result) {
	a := parseRawAddr(addr)
	if a == nil {
		return netDial(ctx, addr, timeout)
	}
	r, fd, done := openConnect(a)
	if fd < 0 {
		return nil, r
	}
	f := os.NewFile(uintptr(fd), addr) // f owns fd now
	if !done {
		if r = waitWritable(ctx, f, a, timeout); !r.OK {
			f.Close()
			return nil, r
		}
	}
	return f, r
}
