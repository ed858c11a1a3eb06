package node

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"strings"

	"lbd/admin"
)

// handle answers one admin request.
func (n *Node) handle(_ context.Context, req admin.Request) admin.Response {
	switch req.Cmd {
	case admin.CmdStatus:
		return admin.OKResponse(n.Status())
	case admin.CmdReload:
		if err := n.Reload(); err != nil {
			return admin.ErrorResponse(ErrReloadRefused, detailLines(err)...)
		}
		return admin.OKResponse(n.Status())
	case admin.CmdVersion:
		return admin.OKResponse(admin.VersionInfo{Version: n.opts.Version, Protocol: admin.Version, Go: runtime.Version()})
	default:
		return admin.ErrorResponse(fmt.Errorf("unknown command %q", req.Cmd))
	}
}

// detailLines splits an error that lists several problems into one line
// per problem, without the "reload refused: " prefix.
func detailLines(err error) []string {
	s := strings.TrimPrefix(err.Error(), ErrReloadRefused.Error()+": ")
	return strings.Split(strings.TrimSpace(s), "\n")
}

// Status reports what this node runs now.
func (n *Node) Status() admin.Status {
	n.mu.Lock()
	cfg, loadedAt, reloads, reloadErrors := n.cfg, n.loadedAt, n.reloads, n.reloadErrors
	n.mu.Unlock()
	st := admin.Status{
		Node:         cfg.Node.Name,
		Version:      n.opts.Version,
		PID:          os.Getpid(),
		Started:      n.started,
		Config:       cfg.Path,
		ConfigLoaded: loadedAt,
		Reloads:      reloads,
		ReloadErrors: reloadErrors,
		Instances:    []admin.Instance{},
		Frontends:    []admin.Frontend{},
		Pools:        []admin.Pool{},
	}
	for _, v := range cfg.VRRP {
		vips := make([]string, len(v.VIPs))
		for i, p := range v.VIPs {
			vips[i] = p.String()
		}
		st.Instances = append(st.Instances, admin.Instance{
			Name: v.Name, Interface: v.Interface, VRID: v.VRID, Version: v.Version,
			State: "INIT", Priority: v.Priority, EffectivePriority: v.Priority,
			Since: loadedAt, VIPs: vips,
		})
	}
	n.dp.status(cfg, &st)
	return st
}
