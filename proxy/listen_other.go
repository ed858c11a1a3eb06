//go:build !linux

package proxy

import (
	"context"
	"net"
)

// listenTCP binds addr for a TCP frontend. Without IP_FREEBIND the address
// must already be local.
func listenTCP(ctx context.Context, addr string) (*net.TCPListener, error) {
	ln, err := (&net.ListenConfig{}).Listen(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	return ln.(*net.TCPListener), nil
}

// listenUDP binds addr for a UDP frontend.
func listenUDP(ctx context.Context, addr string) (*net.UDPConn, error) {
	pc, err := (&net.ListenConfig{}).ListenPacket(ctx, "udp", addr)
	if err != nil {
		return nil, err
	}
	return pc.(*net.UDPConn), nil
}

// ListenTCPAddr binds a TCP listener on addr, as every frontend does.
func ListenTCPAddr(ctx context.Context, addr string) (*net.TCPListener, error) {
	return listenTCP(ctx, addr)
}
