//go:build !linux

package httpproxy

import (
	"context"
	"net"
)

// listenTCP binds addr for an HTTP frontend. Without IP_FREEBIND the
// address must already be local.
func listenTCP(ctx context.Context, addr string) (*net.TCPListener, error) {
	ln, err := (&net.ListenConfig{}).Listen(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	return ln.(*net.TCPListener), nil
}
