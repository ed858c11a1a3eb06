//go:build linux

package vrrp

import (
	"log/slog"

	"golang.org/x/sys/unix"
)

// realtimePriority is the SCHED_FIFO priority of advert threads: above
// every normal thread, below the kernel's own (keepalived uses the same
// approach with its vrrp_rt_priority).
const realtimePriority = 10

// setRealtime gives the calling (locked) thread SCHED_FIFO priority when
// the process may (root or CAP_SYS_NICE), like `chrt -f -p 10 TID`.
func setRealtime(log *slog.Logger) {
	attr := &unix.SchedAttr{Size: unix.SizeofSchedAttr, Policy: unix.SCHED_FIFO, Priority: realtimePriority}
	if err := unix.SchedSetAttr(0, attr, 0); err != nil {
		log.Info("advert thread keeps normal scheduling", "reason", err)
	}
}
