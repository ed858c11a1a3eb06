package bench

import (
	"context"
	"fmt"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

const (
	stopWait  = 5 * time.Second  // SIGTERM to SIGKILL
	readyWait = 10 * time.Second // a proxy must listen within this
	pollEvery = 10 * time.Millisecond
)

// proc is a process the benchmark started, pinned to one CPU with taskset
// (which execs the program, so the PID is the program's).
type proc struct {
	name string
	cmd  *exec.Cmd
	out  tailBuffer

	done chan struct{} // closed when cmd.Wait returned
	err  error         // cmd.Wait's result, set before done is closed
}

// startProc runs `taskset -c CPU argv...` in a process group of its own.
func startProc(name string, cpu int, argv ...string) (*proc, error) {
	p := &proc{
		name: name,
		cmd:  exec.Command("taskset", append([]string{"-c", strconv.Itoa(cpu)}, argv...)...),
		done: make(chan struct{}),
	}
	p.cmd.Stdout = &p.out
	p.cmd.Stderr = &p.out
	p.cmd.SysProcAttr = sysProcAttr()
	if err := p.cmd.Start(); err != nil {
		return nil, fmt.Errorf("bench: starting %s (%s): %w", name, strings.Join(argv, " "), err)
	}
	go func() { // owned by p: ends when the process exits; stop waits for it
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

func (p *proc) pid() int { return p.cmd.Process.Pid }

// exited reports whether the process has ended.
func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stop sends SIGTERM to the process group, SIGKILL after stopWait, and
// waits for the process to be reaped.
func (p *proc) stop() {
	if p.exited() {
		return
	}
	signalGroup(p.pid(), syscall.SIGTERM)
	t := time.NewTimer(stopWait)
	defer t.Stop()
	select {
	case <-p.done:
	case <-t.C:
		signalGroup(p.pid(), syscall.SIGKILL)
		<-p.done
	}
	// Children (nginx workers) may outlive a master that exited first.
	signalGroup(p.pid(), syscall.SIGKILL)
}

// waitListening dials addr until it accepts, the process exits or
// readyWait passes.
func (p *proc) waitListening(ctx context.Context, addr string) error {
	deadline := time.Now().Add(readyWait)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return nil
		}
		if p.exited() {
			return fmt.Errorf("bench: %s exited (%v) before listening on %s; output ends:\n%s", p.name, p.err, addr, p.out.String())
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("bench: %s not listening on %s after %v: %w; output ends:\n%s", p.name, addr, readyWait, err, p.out.String())
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(pollEvery):
		}
	}
}

// tailBuffer keeps the last 16 KiB written to it; safe for concurrent use.
type tailBuffer struct {
	mu  sync.Mutex
	buf []byte
}

const tailMax = 16 << 10

func (b *tailBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf = append(b.buf, p...)
	if len(b.buf) > tailMax {
		b.buf = append(b.buf[:0], b.buf[len(b.buf)-tailMax:]...)
	}
	return len(p), nil
}

func (b *tailBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return string(b.buf)
}
