//go:build !linux

package vrrp

import "log/slog"

// setRealtime does nothing where SCHED_FIFO is not available.
func setRealtime(*slog.Logger) {}
