//go:build linux

package proxy

import (
	"net/netip"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The event loops' system calls, made with RawSyscall: every one of them
// is non-blocking (sockets, pipes and the epoll wait with a zero timeout),
// so the goroutine keeps its P instead of entering the scheduler's syscall
// state, where sysmon would hand the P off (and wake a thread) whenever a
// call such as connect(2) on loopback — which runs the whole handshake —
// lasts longer than its 20 µs tick. Errors come back as an Errno, 0 for
// none, so checking them allocates nothing.

func sysRead(fd int, p []byte) (int, unix.Errno) {
	n, _, e := syscall.RawSyscall(unix.SYS_READ, uintptr(fd), uintptr(unsafe.Pointer(unsafe.SliceData(p))), uintptr(len(p)))
	return int(n), e
}

func sysWrite(fd int, p []byte) (int, unix.Errno) {
	n, _, e := syscall.RawSyscall(unix.SYS_WRITE, uintptr(fd), uintptr(unsafe.Pointer(unsafe.SliceData(p))), uintptr(len(p)))
	return int(n), e
}

// sysSplice moves up to n bytes from in to out (one of them a pipe).
func sysSplice(in, out, n int) (int, unix.Errno) {
	r, _, e := syscall.RawSyscall6(unix.SYS_SPLICE, uintptr(in), 0, uintptr(out), 0, uintptr(n),
		unix.SPLICE_F_MOVE|unix.SPLICE_F_NONBLOCK)
	return int(r), e
}

func sysShutdown(fd, how int) unix.Errno {
	_, _, e := syscall.RawSyscall(unix.SYS_SHUTDOWN, uintptr(fd), uintptr(how), 0)
	return e
}

// sysClose closes fd; without SO_LINGER a socket's close never blocks.
func sysClose(fd int) {
	syscall.RawSyscall(unix.SYS_CLOSE, uintptr(fd), 0, 0)
}

// sysAccept4 is accept4(2), non-blocking and close-on-exec, returning the
// peer's address without the allocation and SO_PROTOCOL lookup of
// unix.Accept4.
func sysAccept4(lfd int) (int, netip.AddrPort, unix.Errno) {
	var rsa unix.RawSockaddrAny
	n := uint32(unix.SizeofSockaddrAny)
	fd, _, e := syscall.RawSyscall6(unix.SYS_ACCEPT4, uintptr(lfd), uintptr(unsafe.Pointer(&rsa)), uintptr(unsafe.Pointer(&n)),
		unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0, 0)
	if e != 0 {
		return -1, netip.AddrPort{}, e
	}
	return int(fd), rawAddrPort(&rsa), 0
}

// sysConnectTCP opens a non-blocking TCP socket with TCP_NODELAY and
// starts connecting it to ap. The error, if any, names the failing call.
func sysConnectTCP(ap netip.AddrPort) (fd int, inProgress bool, call string, e unix.Errno) {
	var rsa unix.RawSockaddrAny
	size, family := rawSockaddr(ap, &rsa)
	r, _, e := syscall.RawSyscall(unix.SYS_SOCKET, uintptr(family), unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if e != 0 {
		return -1, false, "socket", e
	}
	fd = int(r)
	one := int32(1)
	_, _, e = syscall.RawSyscall6(unix.SYS_SETSOCKOPT, uintptr(fd), unix.IPPROTO_TCP, unix.TCP_NODELAY,
		uintptr(unsafe.Pointer(&one)), 4, 0)
	if e != 0 {
		sysClose(fd)
		return -1, false, "setsockopt", e
	}
	_, _, e = syscall.RawSyscall(unix.SYS_CONNECT, uintptr(fd), uintptr(unsafe.Pointer(&rsa)), uintptr(size))
	switch e {
	case 0:
		return fd, false, "", 0
	case unix.EINPROGRESS, unix.EINTR:
		return fd, true, "", 0
	}
	sysClose(fd)
	return -1, false, "connect", e
}

func sysEpollCtl(epfd, op, fd int, ev *unix.EpollEvent) unix.Errno {
	_, _, e := syscall.RawSyscall6(unix.SYS_EPOLL_CTL, uintptr(epfd), uintptr(op), uintptr(fd), uintptr(unsafe.Pointer(ev)), 0, 0)
	return e
}

// sysEpollPoll takes the ready events without waiting (epoll_pwait with a
// zero timeout, the call every architecture has).
func sysEpollPoll(epfd int, events []unix.EpollEvent) (int, unix.Errno) {
	n, _, e := syscall.RawSyscall6(unix.SYS_EPOLL_PWAIT, uintptr(epfd), uintptr(unsafe.Pointer(unsafe.SliceData(events))),
		uintptr(len(events)), 0, 0, 0)
	return int(n), e
}

// rawAddrPort converts a peer's address as Go's net package does (an
// IPv4 client of an IPv6 socket stays IPv4-mapped).
func rawAddrPort(rsa *unix.RawSockaddrAny) netip.AddrPort {
	switch rsa.Addr.Family {
	case unix.AF_INET:
		a := (*unix.RawSockaddrInet4)(unsafe.Pointer(rsa))
		p := (*[2]byte)(unsafe.Pointer(&a.Port))
		return netip.AddrPortFrom(netip.AddrFrom4(a.Addr), uint16(p[0])<<8|uint16(p[1]))
	case unix.AF_INET6:
		a := (*unix.RawSockaddrInet6)(unsafe.Pointer(rsa))
		p := (*[2]byte)(unsafe.Pointer(&a.Port))
		ip := netip.AddrFrom16(a.Addr)
		if a.Scope_id != 0 {
			ip = ip.WithZone(zoneName(a.Scope_id))
		}
		return netip.AddrPortFrom(ip, uint16(p[0])<<8|uint16(p[1]))
	}
	return netip.AddrPort{}
}

// rawSockaddr fills rsa with ap for connect(2) and returns its size and
// address family.
func rawSockaddr(ap netip.AddrPort, rsa *unix.RawSockaddrAny) (uintptr, int) {
	ip := ap.Addr()
	if ip.Is4() {
		a := (*unix.RawSockaddrInet4)(unsafe.Pointer(rsa))
		a.Family = unix.AF_INET
		p := (*[2]byte)(unsafe.Pointer(&a.Port))
		p[0], p[1] = byte(ap.Port()>>8), byte(ap.Port())
		a.Addr = ip.As4()
		return unix.SizeofSockaddrInet4, unix.AF_INET
	}
	a := (*unix.RawSockaddrInet6)(unsafe.Pointer(rsa))
	a.Family = unix.AF_INET6
	p := (*[2]byte)(unsafe.Pointer(&a.Port))
	p[0], p[1] = byte(ap.Port()>>8), byte(ap.Port())
	a.Addr = ip.As16()
	if z := ip.Zone(); z != "" {
		a.Scope_id = zoneIndex(z)
	}
	return unix.SizeofSockaddrInet6, unix.AF_INET6
}
