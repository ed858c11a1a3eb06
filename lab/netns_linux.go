//go:build linux

package lab

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// requirePlatform accepts Linux.
func requirePlatform(testing.TB) {}

// doInNetns runs fn with the calling OS thread in the named namespace
// (/run/netns/NAME, as `ip netns exec` does with setns(2)) and moves the
// thread back afterwards. If moving back fails, the thread stays locked so
// that it dies with the goroutine instead of serving others in the wrong
// namespace.
func doInNetns(ns string, fn func() error) (err error) {
	target, err := unix.Open(filepath.Join(netnsDir, ns), unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("lab: open namespace %s: %w", ns, err)
	}
	defer unix.Close(target)

	runtime.LockOSThread()
	orig, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("lab: open current namespace: %w", err)
	}
	defer unix.Close(orig) // runs after the restore below
	if err := unix.Setns(target, unix.CLONE_NEWNET); err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("lab: enter namespace %s: %w", ns, err)
	}
	defer func() {
		if rerr := unix.Setns(orig, unix.CLONE_NEWNET); rerr != nil {
			err = errors.Join(err, fmt.Errorf("lab: leave namespace %s: %w (thread abandoned)", ns, rerr))
			return // thread stays locked and exits with the goroutine
		}
		runtime.UnlockOSThread()
	}()
	return fn()
}

// sysProcAttr puts a started process in a process group of its own and
// kills it if the test binary dies.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}

// signalGroup sends sig to process group pgid, like `kill -SIG -PGID`.
func signalGroup(pgid int, sig os.Signal) error {
	s, ok := sig.(syscall.Signal)
	if !ok {
		return fmt.Errorf("unsupported signal %v", sig)
	}
	return unix.Kill(-pgid, s)
}

// killGroup sends SIGKILL to process group pgid; a vanished group is fine.
func killGroup(pgid int) error {
	if err := unix.Kill(-pgid, unix.SIGKILL); err != nil && !errors.Is(err, unix.ESRCH) {
		return err
	}
	return nil
}

// killPID sends SIGKILL to one process; a vanished process is fine.
func killPID(pid int) error {
	if err := unix.Kill(pid, unix.SIGKILL); err != nil && !errors.Is(err, unix.ESRCH) {
		return err
	}
	return nil
}

// processAlive reports whether a process with this PID exists.
func processAlive(pid int) bool {
	err := unix.Kill(pid, 0)
	return err == nil || errors.Is(err, unix.EPERM)
}
