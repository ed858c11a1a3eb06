//go:build linux

package vrrp

import (
	"log/slog"
	"os"
	"os/exec"
	"strconv"

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

// RealtimeProcess gives every thread of the process SCHED_FIFO priority, as
// keepalived's vrrp_rt_priority does for its VRRP process; threads the Go
// runtime creates later inherit it. Only for a process that does nothing
// but VRRP: then no runtime thread (the garbage collector's included) can
// be starved by the machine's other work while the advert loop waits on it.
// Programs it starts must drop the priority (see NormalPriorityCommand).
func RealtimeProcess(log *slog.Logger) {
	tasks, err := os.ReadDir("/proc/self/task")
	if err != nil {
		log.Info("VRRP process keeps normal scheduling", "reason", err)
		return
	}
	attr := &unix.SchedAttr{Size: unix.SizeofSchedAttr, Policy: unix.SCHED_FIFO, Priority: realtimePriority}
	for _, t := range tasks {
		tid, err := strconv.Atoi(t.Name())
		if err != nil {
			continue
		}
		if err := unix.SchedSetAttr(tid, attr, 0); err != nil {
			log.Info("VRRP process keeps normal scheduling", "reason", err)
			return
		}
	}
}

// NormalPriorityCommand returns the command line that runs name with args
// under the normal scheduler (`chrt --other 0`), for scripts started by a
// real-time process; without chrt it returns them unchanged.
func NormalPriorityCommand(name string, args ...string) (string, []string) {
	chrt, err := exec.LookPath("chrt")
	if err != nil {
		return name, args
	}
	return chrt, append([]string{"--other", "0", name}, args...)
}
