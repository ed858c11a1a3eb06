package node

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"

	"lbd/admin"
	"lbd/config"
)

// vrrpProc is the parent's handle on the VRRP process (see vrrpchild.go):
// it starts it, forwards configuration, demotes and pool states, asks it
// for status, restarts it if it dies, and stops it last.
type vrrpProc struct {
	argv []string // command that starts the child
	dp   *dataPlane
	log  *slog.Logger

	mu       sync.Mutex // serialises requests; guards the fields below
	conn     net.Conn
	r        *bufio.Reader
	cmd      *exec.Cmd
	exited   chan struct{}
	cfg      *config.Config // last applied, re-applied after a restart
	pools    servingState
	stopping bool

	stop chan struct{}
	wg   sync.WaitGroup // supervisor and pool pusher
}

// childStopTimeout bounds the VRRP process's orderly stop.
const childStopTimeout = 10 * time.Second

func startVRRPProc(argv []string, dp *dataPlane, log *slog.Logger) (*vrrpProc, error) {
	p := &vrrpProc{argv: argv, dp: dp, log: log, stop: make(chan struct{})}
	p.mu.Lock()
	err := p.spawnLocked()
	p.mu.Unlock()
	if err != nil {
		return nil, err
	}
	p.wg.Go(p.pushPools)
	return p, nil
}

// spawnLocked starts the child with one end of a socketpair as its fd 3.
func (p *vrrpProc) spawnLocked() error {
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("node: vrrp process: socketpair: %w", err)
	}
	ours := os.NewFile(uintptr(fds[0]), "vrrp-ctl")
	theirs := os.NewFile(uintptr(fds[1]), "vrrp-ctl-child")
	defer theirs.Close()
	conn, err := net.FileConn(ours)
	ours.Close()
	if err != nil {
		return fmt.Errorf("node: vrrp process: %w", err)
	}
	cmd := exec.Command(p.argv[0], p.argv[1:]...)
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	cmd.ExtraFiles = []*os.File{theirs}
	if err := cmd.Start(); err != nil {
		conn.Close()
		return fmt.Errorf("node: starting the vrrp process: %w", err)
	}
	exited := make(chan struct{})
	p.conn, p.r, p.cmd, p.exited = conn, bufio.NewReader(conn), cmd, exited
	p.wg.Go(func() {
		err := cmd.Wait()
		close(exited)
		p.supervise(cmd, err)
	})
	return nil
}

// supervise restarts the VRRP process when it dies unasked.
func (p *vrrpProc) supervise(cmd *exec.Cmd, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stopping || p.cmd != cmd {
		return
	}
	p.log.Error("the VRRP process exited unexpectedly; restarting it", "err", err)
	p.conn.Close()
	select {
	case <-p.stop:
		return
	case <-time.After(time.Second):
	}
	if err := p.spawnLocked(); err != nil {
		p.log.Error("restarting the VRRP process failed", "err", err)
		return
	}
	if p.cfg != nil {
		if _, err := p.callLocked(childApply, mustJSON(p.cfg)); err != nil {
			p.log.Error("configuring the restarted VRRP process failed", "err", err)
		}
	}
	p.pools = servingState{} // push again
}

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // our own types always encode
	}
	return string(b)
}

// call sends one request and waits for its response.
func (p *vrrpProc) call(cmd string, args ...string) (*admin.Response, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.callLocked(cmd, args...)
}

func (p *vrrpProc) callLocked(cmd string, args ...string) (*admin.Response, error) {
	p.conn.SetDeadline(time.Now().Add(30 * time.Second))
	req, _ := json.Marshal(admin.Request{V: admin.Version, Cmd: cmd, Args: args})
	if _, err := p.conn.Write(append(req, '\n')); err != nil {
		return nil, fmt.Errorf("node: vrrp process: %w", err)
	}
	line, err := p.r.ReadBytes('\n')
	if err != nil {
		return nil, fmt.Errorf("node: vrrp process: %w", err)
	}
	var resp admin.Response
	if err := json.Unmarshal(line, &resp); err != nil {
		return nil, fmt.Errorf("node: vrrp process: malformed answer: %w", err)
	}
	if !resp.OK {
		return &resp, errors.New(resp.Error)
	}
	return &resp, nil
}

// apply hands the configuration to the VRRP process; it keeps instances
// whose section did not change.
func (p *vrrpProc) apply(cfg *config.Config) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cfg = cfg
	_, err := p.callLocked(childApply, mustJSON(cfg))
	return err
}

// setDemoted demotes or promotes the named instance, or all.
func (p *vrrpProc) setDemoted(name string, demote bool) error {
	cmd := admin.CmdPromote
	if demote {
		cmd = admin.CmdDemote
	}
	var args []string
	if name != "" {
		args = []string{name}
	}
	_, err := p.call(cmd, args...)
	return err
}

// instances asks the VRRP process for its instances.
func (p *vrrpProc) instances() ([]admin.Instance, error) {
	resp, err := p.call(childStatus)
	if err != nil {
		return nil, err
	}
	var ins []admin.Instance
	return ins, resp.Decode(&ins)
}

// pushPools tells the VRRP process, on every change, which pools can serve
// (for [[vrrp.track]] pool) and which frontends accept (the proxy track).
func (p *vrrpProc) pushPools() {
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-p.stop:
			return
		case <-t.C:
		}
		now := servingState{Pools: p.dp.servingPools(), Frontends: p.dp.servingFrontends()}
		p.mu.Lock()
		if (!maps.Equal(now.Pools, p.pools.Pools) || !maps.Equal(now.Frontends, p.pools.Frontends)) && !p.stopping {
			if _, err := p.callLocked(childPools, mustJSON(now)); err == nil {
				p.pools = now
			}
		}
		p.mu.Unlock()
	}
}

// close stops the VRRP process in order (masters hand over) and waits.
func (p *vrrpProc) close() {
	p.mu.Lock()
	p.stopping = true
	close(p.stop)
	if _, err := p.callLocked(childStop); err != nil {
		p.log.Warn("stopping the VRRP process", "err", err)
	}
	cmd, exited := p.cmd, p.exited
	p.mu.Unlock()
	select {
	case <-exited:
	case <-time.After(childStopTimeout):
		p.log.Error("the VRRP process did not stop; killing it")
		cmd.Process.Kill()
		<-exited
	}
	p.conn.Close()
	p.wg.Wait()
}
