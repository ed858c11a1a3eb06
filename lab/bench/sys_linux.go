package bench

import (
	"fmt"
	"os"
	"runtime"
	"strconv"
	"syscall"

	"golang.org/x/sys/unix"
)

// pinSelf moves every thread of this process to cpu, like
// `taskset -a -p -c CPU PID`, and sets GOMAXPROCS to 1. Threads the runtime
// creates later inherit the mask of the thread that creates them; a second
// pass catches any created during the first.
func pinSelf(cpu int) error {
	var set unix.CPUSet
	set.Set(cpu)
	for range 2 {
		ents, err := os.ReadDir("/proc/self/task")
		if err != nil {
			return fmt.Errorf("bench: pinning to cpu%d: %w", cpu, err)
		}
		for _, e := range ents {
			tid, err := strconv.Atoi(e.Name())
			if err != nil {
				continue
			}
			if err := unix.SchedSetaffinity(tid, &set); err != nil && err != unix.ESRCH {
				return fmt.Errorf("bench: pinning thread %d to cpu%d: %w", tid, cpu, err)
			}
		}
	}
	runtime.GOMAXPROCS(1)
	return nil
}

// raiseNoFile raises RLIMIT_NOFILE towards n, like `ulimit -n N`: the hard
// limit too when the process may (CAP_SYS_RESOURCE), else the soft limit
// to the hard one. It returns the limit in force; children inherit it.
func raiseNoFile(n uint64) (uint64, error) {
	var lim unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &lim); err != nil {
		return 0, fmt.Errorf("bench: getrlimit: %w", err)
	}
	if lim.Cur >= n {
		return lim.Cur, nil
	}
	want := unix.Rlimit{Cur: n, Max: max(n, lim.Max)}
	if err := unix.Setrlimit(unix.RLIMIT_NOFILE, &want); err == nil {
		return n, nil
	}
	want = unix.Rlimit{Cur: lim.Max, Max: lim.Max}
	if err := unix.Setrlimit(unix.RLIMIT_NOFILE, &want); err != nil {
		return 0, fmt.Errorf("bench: raising the open file limit to %d: %w", lim.Max, err)
	}
	return lim.Max, nil
}

// sysProcAttr puts a child in a process group of its own, killed with the
// benchmark (PR_SET_PDEATHSIG).
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}

// signalGroup sends sig to process group pgid (`kill -SIG -PGID`); a group
// that is gone already is no error.
func signalGroup(pgid int, sig syscall.Signal) error {
	if err := unix.Kill(-pgid, sig); err != nil && err != unix.ESRCH {
		return err
	}
	return nil
}
