package health

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"time"

	"lbd/config"
)

// Result is the outcome of one probe.
type Result struct {
	OK   bool
	Text string // short, for lbctl: "HTTP 503", "connect: connection refused", "timeout after 2s"
}

// A Prober checks one backend once. Probe returns when ctx ends at the
// latest; the Pool gives each probe a context with the check's timeout.
type Prober interface {
	Probe(ctx context.Context, addr string) Result
}

// NewProber returns the active check of [pool.health]: type "http", "tcp"
// or "tls". Type "none" has no prober and gives nil, nil.
func NewProber(h config.Health) (Prober, error) {
	if h.Timeout <= 0 && h.Type != "none" {
		return nil, fmt.Errorf("health: timeout %s is not positive", h.Timeout)
	}
	switch h.Type {
	case "none":
		return nil, nil
	case "tcp":
		return &tcpProber{timeout: h.Timeout.D()}, nil
	case "tls":
		return &tcpProber{timeout: h.Timeout.D(), tls: true, serverName: h.Host}, nil
	case "http":
		return newHTTPProber(h)
	}
	return nil, fmt.Errorf("health: unknown check type %q (want http, tcp, tls or none)", h.Type)
}

// describe turns a failed probe's error into a short text: the system
// call's own words for network errors ("connect: connection refused"),
// "timeout after 2s" when the probe ran out of time.
func describe(ctx context.Context, err error, timeout time.Duration) string {
	var ne net.Error
	if errors.Is(err, context.DeadlineExceeded) || ctx.Err() == context.DeadlineExceeded ||
		errors.Is(err, os.ErrDeadlineExceeded) || errors.As(err, &ne) && ne.Timeout() {
		return "timeout after " + timeout.String()
	}
	if errors.Is(err, context.Canceled) {
		return "canceled"
	}
	var oe *net.OpError
	if errors.As(err, &oe) && oe.Err != nil {
		return oe.Err.Error() // *os.SyscallError: "connect: connection refused"
	}
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Op + ": " + pe.Err.Error() // "read: connection reset by peer"
	}
	return err.Error()
}
