//go:build !linux

package proxy

import "syscall"

// waitReadable returns at once where peeking is not wired up: the read
// that follows waits instead, holding its buffer.
func waitReadable(syscall.RawConn) error { return nil }
