package node

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"sync"

	"lbd/admin"
	"lbd/config"
	"lbd/vrrp"
)

// The VRRP process. VRRP runs in a child process of lbd (`lbd -vrrp-child`),
// as keepalived runs its VRRP child: the advert loop's thread must get a Go
// scheduler P the moment it wakes, which a process busy proxying cannot
// promise (under load a locked goroutine waits behind the run queues for
// tens of milliseconds, a false failover at a 20 ms advert interval). The
// child does only VRRP and VIPs, so its scheduler is always idle.
//
// The parent and the child speak the admin protocol's request/response
// lines over a socketpair (the child's fd 3). When the parent dies the child
// reads EOF and stops at once: a master sends priority 0 and releases its
// VIPs, so the peer takes over after skew time instead of the master-down
// interval — the proxy that served the VIPs is gone.

// Commands between lbd and its VRRP process.
const (
	childApply  = "apply"  // args[0]: the configuration as JSON
	childStatus = "status" // data: []admin.Instance
	childPools  = "pools"  // args[0]: servingState as JSON
	childStop   = "stop"
)

// servingState is what the parent pushes to the child: which pools can
// serve ([[vrrp.track]] pool) and which frontends accept (the proxy track).
type servingState struct {
	Pools     map[string]bool `json:"pools"`
	Frontends map[string]bool `json:"frontends"`
}

// poolStates is the child's view of which pools can serve and which
// frontends accept, pushed by the parent.
type poolStates struct {
	mu sync.Mutex
	s  servingState
}

func (p *poolStates) poolServing(name string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.s.Pools[name]
}

// frontendServing is true for a frontend the parent has not reported on
// yet (at start, or new in a reload): only a reported failure counts.
func (p *poolStates) frontendServing(name string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	ok, known := p.s.Frontends[name]
	return ok || !known
}

// RunVRRPChild is `lbd -vrrp-child`: it serves the parent on ctl until the
// parent says stop, closes the socket (dies), or ctx is done (SIGTERM).
// Every exit path stops the instances in order: masters send priority 0 and
// release their VIPs.
func RunVRRPChild(ctx context.Context, ctl *os.File, log *slog.Logger) error {
	conn, err := net.FileConn(ctl)
	ctl.Close()
	if err != nil {
		return fmt.Errorf("node: vrrp child: control socket: %w", err)
	}
	stopRead := context.AfterFunc(ctx, func() { conn.Close() })
	defer stopRead()
	vrrp.RealtimeProcess(log)
	pools := &poolStates{}
	set := newVRRPSet(pools, log)
	defer set.stop()
	r := bufio.NewReader(conn)
	enc := json.NewEncoder(conn)
	for {
		line, err := r.ReadBytes('\n')
		if err != nil {
			if ctx.Err() == nil {
				log.Warn("lbd is gone: stopping VRRP, releasing the VIPs")
			}
			return nil
		}
		var req admin.Request
		if err := json.Unmarshal(line, &req); err != nil {
			enc.Encode(admin.ErrorResponse(fmt.Errorf("malformed request: %w", err)))
			continue
		}
		if req.Cmd == childStop {
			set.stop()
			enc.Encode(admin.OKResponse(nil))
			return nil
		}
		enc.Encode(serveChild(set, pools, req))
	}
}

func serveChild(set *vrrpSet, pools *poolStates, req admin.Request) admin.Response {
	arg := func() ([]byte, error) {
		if len(req.Args) != 1 {
			return nil, fmt.Errorf("%s takes one argument", req.Cmd)
		}
		return []byte(req.Args[0]), nil
	}
	switch req.Cmd {
	case childApply:
		b, err := arg()
		var cfg config.Config
		if err == nil {
			err = json.Unmarshal(b, &cfg)
		}
		if err == nil {
			err = set.apply(&cfg)
		}
		if err != nil {
			return admin.ErrorResponse(err)
		}
		return admin.OKResponse(nil)
	case childPools:
		b, err := arg()
		var st servingState
		if err == nil {
			err = json.Unmarshal(b, &st)
		}
		if err != nil {
			return admin.ErrorResponse(err)
		}
		pools.mu.Lock()
		pools.s = st
		pools.mu.Unlock()
		return admin.OKResponse(nil)
	case childStatus:
		return admin.OKResponse(set.instances())
	case admin.CmdDemote, admin.CmdPromote:
		name := ""
		if len(req.Args) == 1 {
			name = req.Args[0]
		}
		err := set.each(name, func(v *vrrpInstance) {
			if req.Cmd == admin.CmdDemote {
				v.log.Info("demoted by lbctl")
				v.in.Demote()
			} else {
				v.log.Info("promoted by lbctl")
				v.in.Promote()
			}
		})
		if err != nil {
			return admin.ErrorResponse(err)
		}
		return admin.OKResponse(nil)
	}
	return admin.ErrorResponse(errors.New("unknown command " + req.Cmd))
}
