//go:build !linux

package proxy

import "syscall"

// readWaiter returns at once where peeking is not wired up: the read that
// follows waits instead, holding its buffer.
type readWaiter struct{}

func newReadWaiter(syscall.RawConn) *readWaiter { return &readWaiter{} }

func (*readWaiter) wait() error { return nil }
