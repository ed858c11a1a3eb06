package lab

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"time"
)

// Proc is a long-running process started in a host by Host.Start. It runs
// in a process group of its own; the lab kills the group and reaps the
// process at cleanup.
type Proc struct {
	desc string // "host: name args"
	cmd  *exec.Cmd
	out  buffer

	done chan struct{} // closed when cmd.Wait returned
	err  error         // cmd.Wait's result, set before done is closed
}

// Start starts name with args inside the host's namespace, like
// `ip netns exec NS name args... &`, collecting stdout and stderr.
func (h *Host) Start(name string, args ...string) (*Proc, error) {
	p := &Proc{
		desc: fmt.Sprintf("%s: %s", h.Name, strings.Join(append([]string{name}, args...), " ")),
		cmd:  exec.Command("ip", append([]string{"netns", "exec", h.Netns, name}, args...)...),
		done: make(chan struct{}),
	}
	p.cmd.Stdout = &p.out
	p.cmd.Stderr = &p.out
	p.cmd.SysProcAttr = sysProcAttr()

	l := h.lab
	l.mu.Lock()
	defer l.mu.Unlock() // so that close sees every started process
	if l.closed {
		return nil, fmt.Errorf("lab: start %s: lab already cleaned up", p.desc)
	}
	if err := p.cmd.Start(); err != nil {
		return nil, fmt.Errorf("lab: start %s: %w", p.desc, err)
	}
	l.procs = append(l.procs, p)
	go func() { // owned by p: ends when the process exits; Lab.close waits for it
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// String describes the process as "host: command line".
func (p *Proc) String() string { return p.desc }

// Pid returns the process ID (the process group ID too).
func (p *Proc) Pid() int { return p.cmd.Process.Pid }

// Output returns what the process wrote to stdout and stderr so far.
func (p *Proc) Output() string { return p.out.String() }

// Signal sends sig to the process's group.
func (p *Proc) Signal(sig os.Signal) error {
	if err := signalGroup(p.Pid(), sig); err != nil {
		return fmt.Errorf("lab: signal %v to %s: %w", sig, p.desc, err)
	}
	return nil
}

// Kill sends SIGKILL to the process's group; the group being gone already
// is no error.
func (p *Proc) Kill() error {
	if err := killGroup(p.Pid()); err != nil {
		return fmt.Errorf("lab: kill %s: %w", p.desc, err)
	}
	return nil
}

// Wait waits up to timeout for the process to exit and returns its exit
// error (an *exec.ExitError for a non-zero status or a signal); the error
// wraps ErrTimeout when it is still running.
func (p *Proc) Wait(timeout time.Duration) error {
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-p.done:
		return p.err
	case <-t.C:
		return fmt.Errorf("lab: %s still running after %v: %w", p.desc, timeout, ErrTimeout)
	}
}

// WaitOutput polls the output until it contains substr. It fails when the
// process exits without printing it, or when timeout passes (wrapping
// ErrTimeout); the error shows the output's end.
func (p *Proc) WaitOutput(substr string, timeout time.Duration) error {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	tick := time.NewTicker(pollEvery)
	defer tick.Stop()
	for {
		if strings.Contains(p.Output(), substr) {
			return nil
		}
		select {
		case <-p.done: // output is complete once Wait returned
			if strings.Contains(p.Output(), substr) {
				return nil
			}
			return fmt.Errorf("lab: %s exited (%v) without printing %q; output ends:\n%s", p.desc, p.err, substr, tail(p.Output()))
		case <-deadline.C:
			return fmt.Errorf("lab: %s did not print %q within %v: %w; output ends:\n%s", p.desc, substr, timeout, ErrTimeout, tail(p.Output()))
		case <-tick.C:
		}
	}
}

// tail returns the last 2 KiB of s.
func tail(s string) string {
	const max = 2048
	if len(s) > max {
		return "..." + s[len(s)-max:]
	}
	return s
}

// buffer is a bytes.Buffer safe for concurrent writes and reads.
type buffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
