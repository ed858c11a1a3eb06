//go:build linux

package proxy

import (
	"context"
	"net"
	"syscall"

	"golang.org/x/sys/unix"
)

// freebind sets IP_FREEBIND (and IPV6_FREEBIND) and SO_REUSEADDR on a socket
// before bind, so a frontend can bind a VIP this node does not hold yet,
// like `net.ipv4.ip_nonlocal_bind=1` but for lbd's sockets only.
func freebind(network, address string, c syscall.RawConn) error {
	var serr error
	err := c.Control(func(fd uintptr) {
		if serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEADDR, 1); serr != nil {
			return
		}
		switch network {
		case "tcp6", "udp6":
			if serr = unix.SetsockoptInt(int(fd), unix.SOL_IPV6, unix.IPV6_FREEBIND, 1); serr != nil {
				return
			}
		}
		// IP_FREEBIND also applies to IPv6 sockets on Linux.
		serr = unix.SetsockoptInt(int(fd), unix.SOL_IP, unix.IP_FREEBIND, 1)
	})
	if err != nil {
		return err
	}
	return serr
}

func listenConfig() *net.ListenConfig {
	return &net.ListenConfig{Control: freebind, KeepAlive: -1}
}

// listenTCP binds addr for a TCP frontend.
func listenTCP(ctx context.Context, addr string) (*net.TCPListener, error) {
	ln, err := listenConfig().Listen(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	return ln.(*net.TCPListener), nil
}

// listenUDP binds addr for a UDP frontend.
func listenUDP(ctx context.Context, addr string) (*net.UDPConn, error) {
	pc, err := listenConfig().ListenPacket(ctx, "udp", addr)
	if err != nil {
		return nil, err
	}
	return pc.(*net.UDPConn), nil
}

// ListenTCPAddr binds a TCP listener on addr with IP_FREEBIND, as every
// frontend does, so that it may bind a VIP this node does not hold yet.
func ListenTCPAddr(ctx context.Context, addr string) (*net.TCPListener, error) {
	return listenTCP(ctx, addr)
}
