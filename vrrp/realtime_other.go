//go:build !linux

package vrrp

import "log/slog"

// setRealtime does nothing where SCHED_FIFO is not available.
func setRealtime(*slog.Logger) {}

// RealtimeProcess does nothing where SCHED_FIFO is not available.
func RealtimeProcess(*slog.Logger) {}

// NormalPriorityCommand returns name and args unchanged.
func NormalPriorityCommand(name string, args ...string) (string, []string) { return name, args }
