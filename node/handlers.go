package node

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"runtime"
	"sort"
	"strings"

	"lbd/admin"
	lbsync "lbd/sync"
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
	case admin.CmdDemote, admin.CmdPromote:
		if len(req.Args) > 1 {
			return admin.ErrorResponse(fmt.Errorf("%s takes at most one instance name", req.Cmd))
		}
		name := ""
		if len(req.Args) == 1 {
			name = req.Args[0]
		}
		if err := n.vr.setDemoted(name, req.Cmd == admin.CmdDemote); err != nil {
			return admin.ErrorResponse(err)
		}
		return admin.OKResponse(n.Status())
	case admin.CmdDrain, admin.CmdEnable, admin.CmdDisable:
		if len(req.Args) != 2 {
			return admin.ErrorResponse(fmt.Errorf("%s takes a pool and a backend address", req.Cmd))
		}
		if err := n.dp.setBackendState(req.Args[0], req.Args[1], req.Cmd); err != nil {
			return admin.ErrorResponse(err)
		}
		n.log.Info("backend state changed by lbctl", "pool", req.Args[0], "backend", req.Args[1], "command", req.Cmd)
		return admin.OKResponse(n.Status())
	case admin.CmdSessions:
		if len(req.Args) > 2 {
			return admin.ErrorResponse(fmt.Errorf("sessions takes nothing, a pool, or a pool and a key"))
		}
		if n.sync == nil {
			return admin.ErrorResponse(fmt.Errorf("no [cluster] is configured: sessions are kept on this node only"))
		}
		if len(req.Args) > 0 && !n.dp.hasPool(req.Args[0]) {
			return admin.ErrorResponse(fmt.Errorf("no pool named %q", req.Args[0]))
		}
		return admin.OKResponse(n.sessions(req.Args))
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
	if ins, err := n.vr.instances(); err != nil {
		n.log.Warn("asking the VRRP process for status", "err", err)
	} else {
		st.Instances = ins
	}
	n.dp.status(cfg, &st)
	if n.sync != nil {
		for _, m := range n.sync.Members() {
			st.Members = append(st.Members, admin.Member{Name: m.Name, Addr: m.Addr.String(), State: string(m.State), Since: m.Since, Self: m.Self})
		}
		st.Peers = n.peers()
	}
	return st
}

// sessions reports the replicated tables and, given a pool and a key,
// looks the key up as a sticky cookie token, a client IP, then a UDP flow.
func (n *Node) sessions(args []string) admin.Sessions {
	var out admin.Sessions
	if len(args) == 1 {
		out.Pool = args[0]
		backends := n.dp.poolBackends(args[0])
		for _, t := range n.sync.Tables() {
			count := t.Count(func(key, value string) bool {
				if t.Name() == lbsync.TableFlows {
					return backends[value]
				}
				return lbsync.InPool(key, out.Pool)
			})
			out.Tables = append(out.Tables, admin.SessionTable{Name: t.Name(), Entries: count})
		}
	} else {
		for _, t := range n.sync.Tables() {
			ts := t.Stats()
			out.Tables = append(out.Tables, admin.SessionTable{Name: ts.Name, Entries: ts.Len, Tombstones: ts.Tombstones,
				MaxEntries: ts.MaxEntries, Evictions: ts.Evictions, Digest: fmt.Sprintf("%016x", t.Digest())})
		}
	}
	sort.Slice(out.Tables, func(i, j int) bool { return out.Tables[i].Name < out.Tables[j].Name })
	out.Peers = n.peers()
	st := n.sync.Stats()
	out.Counters = map[string]uint64{
		"deltas_sent": st.DeltasSent, "records_received": st.RecordsReceived, "stale_records": st.StaleRecords,
		"full_syncs_sent": st.FullSyncsSent, "full_syncs_received": st.FullSyncsReceived,
		"rejected_packets": st.RejectedPackets, "rejected_streams": st.RejectedStreams,
		"dropped_messages": st.DroppedMessages, "feed_resets": st.FeedResets, "snapshot_errors": st.SnapshotErrors,
		"resumes": st.Resumes,
	}
	if len(args) == 2 {
		pool, key := args[0], args[1]
		keys := []string{lbsync.CookieKey(pool, key)}
		if ip, err := netip.ParseAddr(key); err == nil {
			keys = append(keys, lbsync.SourceIPKey(pool, ip))
		}
		if ap, err := netip.ParseAddrPort(key); err == nil {
			keys = append(keys, lbsync.FlowKey(ap))
		}
		out.Lookup = &admin.SessionEntry{Key: keys[0]}
		for _, k := range keys {
			if b, ok := n.dp.affinity.Lookup(k); ok {
				out.Lookup = &admin.SessionEntry{Key: k, Backend: b, Found: true}
				break
			}
		}
	}
	return out
}

// poolBackends returns the addresses of pool's backends, as the tables
// store them.
func (d *dataPlane) poolBackends(pool string) map[string]bool {
	d.mu.Lock()
	p := d.pools[pool]
	d.mu.Unlock()
	m := map[string]bool{}
	if p != nil {
		for _, b := range p.Backends() {
			m[b.Address()] = true
		}
	}
	return m
}

func (d *dataPlane) hasPool(name string) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.pools[name] != nil
}

// peers reports the replication streams to the other members.
func (n *Node) peers() []admin.SessionPeer {
	out := []admin.SessionPeer{}
	for _, p := range n.sync.Peers() {
		out = append(out, admin.SessionPeer{Name: p.Name, Addr: p.Addr, State: p.State, Since: p.Since,
			RecordsSent: p.RecordsSent, Pending: p.Pending, LagMs: float64(p.Lag.Microseconds()) / 1000, LastAck: p.LastAck})
	}
	return out
}
