//go:build !linux

package health

import (
	"context"
	"time"
)

// rawAddr is empty outside Linux: there is no raw connect path.
type rawAddr struct{}

// parseRawAddr leaves every address to net.Dialer outside Linux.
func parseRawAddr(string) *rawAddr { return nil }

// startConnect is never called outside Linux (parseRawAddr gives nil).
func startConnect(*rawAddr) (Result, int, bool) {
	return Result{Text: "connect: no raw connect on this system"}, -1, true
}

// waitConnect is never called outside Linux (startConnect is done at once).
func waitConnect(context.Context, int, *rawAddr, time.Duration) Result {
	return Result{Text: "connect: no raw connect on this system"}
}

// dialCheck dials with net.Dialer outside Linux.
func dialCheck(ctx context.Context, addr string, timeout time.Duration) (checkConn, Result) {
	return netDial(ctx, addr, timeout)
}

// connectProbe leaves every address to net.Dialer outside Linux.
func connectProbe(context.Context, string, time.Duration) (Result, bool) { return Result{}, false }
