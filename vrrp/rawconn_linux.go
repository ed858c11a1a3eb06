//go:build linux

package vrrp

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// ErrTimeout is returned by RawConn.ReadFrom when the read deadline passes,
// and ErrWoken when Wake interrupts it.
var (
	ErrTimeout = errors.New("vrrp: read deadline reached")
	ErrWoken   = errors.New("vrrp: woken")
)

// RawConn is a Conn on a raw IP socket of protocol 112 bound to one
// interface (SO_BINDTODEVICE), member of the VRRP group of its family,
// sending with TTL / hop limit 255 and DSCP CS6 as keepalived does.
//
// It is built for a dedicated OS thread: ReadFrom blocks in ppoll(2) on the
// socket and an eventfd, so the advert loop wakes from the kernel at its
// deadline without going through the Go scheduler's timers or netpoller.
type RawConn struct {
	fd      int
	wake    int // eventfd, see Wake
	is4     bool
	ifindex int
	dl      atomic.Int64 // read deadline, unix ns; 0: none
	oob     []byte

	// BadTTL counts packets dropped because their TTL or hop limit was not
	// 255 (RFC 5798 §7.1).
	BadTTL atomic.Uint64
}

// ListenRaw opens the VRRP socket of family (4 or 6) on interface ifname.
//
// Equivalent to joining the group as `ip maddr add 01:00:5e:00:00:12 dev IF`
// would, plus a raw socket for protocol 112.
func ListenRaw(ifname string, family int) (*RawConn, error) {
	ifi, err := net.InterfaceByName(ifname)
	if err != nil {
		return nil, fmt.Errorf("vrrp: %w", err)
	}
	c := &RawConn{is4: family == 4, ifindex: ifi.Index, fd: -1, wake: -1}
	if err := c.open(ifi); err != nil {
		c.Close()
		return nil, fmt.Errorf("vrrp: opening raw socket on %s: %w", ifname, err)
	}
	return c, nil
}

func (c *RawConn) open(ifi *net.Interface) error {
	af := unix.AF_INET6
	if c.is4 {
		af = unix.AF_INET
	}
	fd, err := unix.Socket(af, unix.SOCK_RAW|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, ProtocolNumber)
	if err != nil {
		return err
	}
	c.fd = fd
	if c.wake, err = unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC); err != nil {
		return err
	}
	if err := unix.BindToDevice(fd, ifi.Name); err != nil {
		return fmt.Errorf("SO_BINDTODEVICE: %w", err)
	}
	if c.is4 {
		return c.setup4(ifi)
	}
	return c.setup6(ifi)
}

func (c *RawConn) setup4(ifi *net.Interface) error {
	fd := c.fd
	for _, o := range []struct {
		opt, val int
		name     string
	}{
		{unix.IP_TTL, 255, "IP_TTL"},
		{unix.IP_MULTICAST_TTL, 255, "IP_MULTICAST_TTL"},
		{unix.IP_TOS, 0xc0, "IP_TOS"},
		{unix.IP_MULTICAST_LOOP, 0, "IP_MULTICAST_LOOP"},
	} {
		if err := unix.SetsockoptInt(fd, unix.IPPROTO_IP, o.opt, o.val); err != nil {
			return fmt.Errorf("%s: %w", o.name, err)
		}
	}
	mreq := &unix.IPMreqn{Multiaddr: Group4.As4(), Ifindex: int32(ifi.Index)}
	if err := unix.SetsockoptIPMreqn(fd, unix.IPPROTO_IP, unix.IP_MULTICAST_IF, mreq); err != nil {
		return fmt.Errorf("IP_MULTICAST_IF: %w", err)
	}
	if err := unix.SetsockoptIPMreqn(fd, unix.IPPROTO_IP, unix.IP_ADD_MEMBERSHIP, mreq); err != nil {
		return fmt.Errorf("joining %s: %w", Group4, err)
	}
	c.oob = make([]byte, unix.CmsgSpace(unix.SizeofInet4Pktinfo))
	return nil
}

func (c *RawConn) setup6(ifi *net.Interface) error {
	fd := c.fd
	for _, o := range []struct {
		opt, val int
		name     string
	}{
		{unix.IPV6_UNICAST_HOPS, 255, "IPV6_UNICAST_HOPS"},
		{unix.IPV6_MULTICAST_HOPS, 255, "IPV6_MULTICAST_HOPS"},
		{unix.IPV6_TCLASS, 0xc0, "IPV6_TCLASS"},
		{unix.IPV6_MULTICAST_LOOP, 0, "IPV6_MULTICAST_LOOP"},
		{unix.IPV6_MULTICAST_IF, ifi.Index, "IPV6_MULTICAST_IF"},
		{unix.IPV6_RECVHOPLIMIT, 1, "IPV6_RECVHOPLIMIT"},
		{unix.IPV6_RECVPKTINFO, 1, "IPV6_RECVPKTINFO"},
	} {
		if err := unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, o.opt, o.val); err != nil {
			return fmt.Errorf("%s: %w", o.name, err)
		}
	}
	mreq := &unix.IPv6Mreq{Multiaddr: Group6.As16(), Interface: uint32(ifi.Index)}
	if err := unix.SetsockoptIPv6Mreq(fd, unix.IPPROTO_IPV6, unix.IPV6_JOIN_GROUP, mreq); err != nil {
		return fmt.Errorf("joining %s: %w", Group6, err)
	}
	c.oob = make([]byte, unix.CmsgSpace(unix.SizeofInet6Pktinfo)+unix.CmsgSpace(4))
	return nil
}

// SetReadDeadline makes ReadFrom return ErrTimeout at t; the zero time
// means no deadline.
func (c *RawConn) SetReadDeadline(t time.Time) {
	if t.IsZero() {
		c.dl.Store(0)
		return
	}
	c.dl.Store(t.UnixNano())
}

// Wake makes a blocked (or the next) ReadFrom return ErrWoken.
func (c *RawConn) Wake() error {
	var one [8]byte
	binary.NativeEndian.PutUint64(one[:], 1)
	_, err := unix.Write(c.wake, one[:])
	if errors.Is(err, unix.EAGAIN) {
		return nil // already signalled
	}
	return err
}

// ReadFrom returns the next VRRP message (without IP header) and its
// source and destination addresses. Packets whose TTL or hop limit is not
// 255 are dropped and counted in BadTTL.
func (c *RawConn) ReadFrom(b []byte) (int, netip.Addr, netip.Addr, error) {
	for {
		n, src, dst, err := c.recv(b)
		if err == nil {
			return n, src, dst, nil
		}
		if !errors.Is(err, unix.EAGAIN) {
			return 0, netip.Addr{}, netip.Addr{}, err
		}
		if err := c.wait(); err != nil {
			return 0, netip.Addr{}, netip.Addr{}, err
		}
	}
}

// wait blocks until the socket is readable, Wake is called or the deadline
// passes.
func (c *RawConn) wait() error {
	fds := [2]unix.PollFd{{Fd: int32(c.fd), Events: unix.POLLIN}, {Fd: int32(c.wake), Events: unix.POLLIN}}
	for {
		var ts *unix.Timespec
		if dl := c.dl.Load(); dl != 0 {
			left := dl - time.Now().UnixNano()
			if left <= 0 {
				return ErrTimeout
			}
			t := unix.NsecToTimespec(left)
			ts = &t
		}
		fds[0].Revents, fds[1].Revents = 0, 0
		_, err := unix.Ppoll(fds[:], ts, nil)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return err
		}
		if fds[1].Revents != 0 {
			var buf [8]byte
			unix.Read(c.wake, buf[:])
			return ErrWoken
		}
		if fds[0].Revents&(unix.POLLERR|unix.POLLNVAL) != 0 {
			return fmt.Errorf("vrrp: socket error (revents %#x)", fds[0].Revents)
		}
		if fds[0].Revents != 0 {
			return nil
		}
		// Timed out: loop to compare with the (possibly moved) deadline.
	}
}

func (c *RawConn) recv(b []byte) (int, netip.Addr, netip.Addr, error) {
	if c.is4 {
		return c.recv4(b)
	}
	return c.recv6(b)
}

// recv4 reads one IPv4 datagram; raw IPv4 sockets deliver the IP header.
func (c *RawConn) recv4(b []byte) (int, netip.Addr, netip.Addr, error) {
	for {
		n, _, err := unix.Recvfrom(c.fd, b, 0)
		if err != nil {
			return 0, netip.Addr{}, netip.Addr{}, err
		}
		if n < 20 {
			continue
		}
		ihl := int(b[0]&0x0f) * 4
		total := int(binary.BigEndian.Uint16(b[2:4]))
		if ihl < 20 || n < ihl || total > n || total < ihl {
			continue
		}
		if b[8] != 255 {
			c.BadTTL.Add(1)
			continue
		}
		src := netip.AddrFrom4([4]byte(b[12:16]))
		dst := netip.AddrFrom4([4]byte(b[16:20]))
		m := copy(b, b[ihl:total])
		return m, src, dst, nil
	}
}

// recv6 reads one IPv6 datagram; the hop limit and destination come as
// control messages.
func (c *RawConn) recv6(b []byte) (int, netip.Addr, netip.Addr, error) {
	for {
		n, oobn, _, from, err := unix.Recvmsg(c.fd, b, c.oob, 0)
		if err != nil {
			return 0, netip.Addr{}, netip.Addr{}, err
		}
		sa, ok := from.(*unix.SockaddrInet6)
		if !ok {
			continue
		}
		src := netip.AddrFrom16(sa.Addr)
		var dst netip.Addr
		hops := -1
		rest := c.oob[:oobn]
		for len(rest) > 0 {
			h, data, r, err := unix.ParseOneSocketControlMessage(rest)
			if err != nil {
				break
			}
			rest = r
			switch {
			case h.Level == unix.IPPROTO_IPV6 && h.Type == unix.IPV6_HOPLIMIT && len(data) >= 4:
				hops = int(binary.NativeEndian.Uint32(data))
			case h.Level == unix.IPPROTO_IPV6 && h.Type == unix.IPV6_PKTINFO && len(data) >= 16:
				dst = netip.AddrFrom16([16]byte(data[:16]))
			}
		}
		if hops != 255 {
			c.BadTTL.Add(1)
			continue
		}
		if !dst.IsValid() {
			dst = Group6
		}
		return n, src, dst, nil
	}
}

// WriteTo sends one VRRP message from src to dst (the group or a unicast
// peer) out of the socket's interface.
func (c *RawConn) WriteTo(b []byte, src, dst netip.Addr) error {
	var err error
	if c.is4 {
		oob := unix.PktInfo4(&unix.Inet4Pktinfo{Ifindex: int32(c.ifindex), Spec_dst: src.As4()})
		err = unix.Sendmsg(c.fd, b, oob, &unix.SockaddrInet4{Addr: dst.As4()}, 0)
	} else {
		oob := unix.PktInfo6(&unix.Inet6Pktinfo{Addr: src.As16(), Ifindex: uint32(c.ifindex)})
		err = unix.Sendmsg(c.fd, b, oob, &unix.SockaddrInet6{Addr: dst.As16(), ZoneId: uint32(c.ifindex)}, 0)
	}
	if err != nil {
		return fmt.Errorf("vrrp: sending to %s: %w", dst, err)
	}
	return nil
}

// Close closes the socket; a ReadFrom blocked in another goroutine is woken
// and returns an error.
func (c *RawConn) Close() error {
	var errs []error
	if c.wake >= 0 {
		c.Wake()
	}
	if c.fd >= 0 {
		errs = append(errs, unix.Close(c.fd))
		c.fd = -1
	}
	if c.wake >= 0 {
		errs = append(errs, unix.Close(c.wake))
		c.wake = -1
	}
	return errors.Join(errs...)
}
