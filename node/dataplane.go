package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"slices"
	"sync"
	"time"

	"lbd/admin"
	"lbd/config"
	"lbd/health"
	"lbd/proxy"
	"lbd/proxy/balance"
	"lbd/proxy/httpproxy"
)

// frontendGrace is how long a frontend removed by a reload lets its open
// connections finish before it cuts them.
const frontendGrace = 30 * time.Second

// frontend is what the node needs of a TCP or UDP frontend.
type frontend interface {
	Start()
	Close(ctx context.Context) error
	Update(cfg config.Frontend, pools proxy.Pools)
	Config() config.Frontend
	Stats() proxy.FrontendStats
}

var (
	_ frontend = (*proxy.TCPFrontend)(nil)
	_ frontend = (*proxy.UDPFrontend)(nil)
	_ frontend = (*httpproxy.Frontend)(nil)
)

// listen binds a new frontend of fc's mode.
func (d *dataPlane) listen(fc config.Frontend, pools proxy.Pools) (frontend, error) {
	pool := pools[fc.DefaultPool]
	switch fc.Mode {
	case "tcp":
		return proxy.ListenTCP(fc, pool, d.affinity, d.log)
	case "udp":
		return proxy.ListenUDP(fc, pool, d.affinity, d.log)
	case "http":
		return httpproxy.Listen(fc, pools, d.affinity, d.log)
	}
	return nil, fmt.Errorf("node: frontend %s: mode %q is not served by this build of lbd", fc.Name, fc.Mode)
}

// dataPlane owns the pools and frontends of the running configuration.
type dataPlane struct {
	log *slog.Logger

	mu        sync.Mutex // guards the maps
	pools     proxy.Pools
	health    map[string]*health.Pool
	frontends map[string]frontend

	retiring sync.WaitGroup // frontends removed by a reload, finishing

	affinity proxy.Affinity // UDP flows and source-IP persistence
}

func newDataPlane(log *slog.Logger) *dataPlane {
	return &dataPlane{log: log, affinity: proxy.NewLocalAffinity(), pools: proxy.Pools{}, health: map[string]*health.Pool{}, frontends: map[string]frontend{}}
}

// supported reports a frontend mode this build cannot serve yet.
func supported(cfg *config.Config) error {
	var errs []error
	for _, f := range cfg.Frontends {
		if f.Mode != "tcp" && f.Mode != "udp" && f.Mode != "http" {
			errs = append(errs, fmt.Errorf("node: frontend %s: mode %q is not served by this build of lbd", f.Name, f.Mode))
		}
	}
	return errors.Join(errs...)
}

// apply moves the data plane to cfg: unchanged pools are kept as they are,
// changed ones are rebuilt keeping the live state of backends that stay,
// frontends whose bind address and mode stay keep their listener and their
// open connections; removed frontends stop accepting and finish.
func (d *dataPlane) apply(cfg *config.Config) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	pools := make(proxy.Pools, len(cfg.Pools))
	checkers := make(map[string]*health.Pool, len(cfg.Pools))
	var newCheckers []*health.Pool
	fail := func(err error) error {
		for _, h := range newCheckers {
			h.Close()
		}
		return err
	}
	for _, pc := range cfg.Pools {
		prev := d.pools[pc.Name]
		if prev != nil && reflect.DeepEqual(prev.Config(), pc) {
			pools[pc.Name] = prev
			checkers[pc.Name] = d.health[pc.Name]
			continue
		}
		p, err := proxy.NewPool(pc, prev, d.log)
		if err != nil {
			return fail(err)
		}
		bbs := make([]*balance.Backend, len(p.Backends()))
		for i, b := range p.Backends() {
			bbs[i] = b.Backend
		}
		h, err := health.NewPool(pc, bbs, d.log.With("component", "health"))
		if err != nil {
			return fail(err)
		}
		p.SetHealth(h)
		newCheckers = append(newCheckers, h)
		pools[pc.Name] = p
		checkers[pc.Name] = h
	}

	frontends := make(map[string]frontend, len(cfg.Frontends))
	var started []frontend
	for _, fc := range cfg.Frontends {
		if prev := d.frontends[fc.Name]; prev != nil && prev.Config().Bind == fc.Bind && prev.Config().Mode == fc.Mode {
			frontends[fc.Name] = prev
			continue
		}
		f, err := d.listen(fc, pools)
		if err != nil {
			for _, s := range started {
				s.Close(context.Background())
			}
			return fail(err)
		}
		started = append(started, f)
		frontends[fc.Name] = f
	}
	// Nothing can fail from here on.
	for _, fc := range cfg.Frontends {
		f := frontends[fc.Name]
		f.Update(fc, pools)
	}
	for name, f := range d.frontends {
		if frontends[name] == f {
			continue
		}
		d.log.Info("frontend removed, finishing its connections", "frontend", name, "grace", frontendGrace)
		d.retiring.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), frontendGrace)
			defer cancel()
			f.Close(ctx)
		})
	}
	for _, f := range started {
		f.Start()
	}
	for name, h := range d.health {
		if checkers[name] != h {
			h.Close()
		}
	}
	for _, h := range newCheckers {
		h.Start()
	}
	d.pools, d.frontends, d.health = pools, frontends, checkers
	return nil
}

// stop closes every frontend, letting connections finish until ctx is done.
func (d *dataPlane) stop(ctx context.Context) error {
	d.mu.Lock()
	fs := d.frontends
	d.frontends = map[string]frontend{}
	d.mu.Unlock()
	var wg sync.WaitGroup
	errs := make(chan error, len(fs))
	for _, f := range fs {
		wg.Go(func() { errs <- f.Close(ctx) })
	}
	wg.Wait()
	d.retiring.Wait()
	d.mu.Lock()
	for _, h := range d.health {
		h.Close()
	}
	d.health = map[string]*health.Pool{}
	d.mu.Unlock()
	close(errs)
	var all []error
	for err := range errs {
		all = append(all, err)
	}
	return errors.Join(all...)
}

// status fills the frontends and pools of st.
func (d *dataPlane) status(cfg *config.Config, st *admin.Status) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, fc := range cfg.Frontends {
		fs := admin.Frontend{Name: fc.Name, Bind: fc.Bind, Mode: fc.Mode, DefaultPool: fc.DefaultPool, State: "stopped"}
		if f := d.frontends[fc.Name]; f != nil {
			s := f.Stats()
			fs.State, fs.Active, fs.Total, fs.Refused = "listening", s.Active, s.Total, s.NoBackend
			if hf, ok := f.(*httpproxy.Frontend); ok && fc.AccessLog != "" {
				a := hf.AccessLogStats()
				fs.AccessLog = &admin.AccessLogCounts{Lines: a.Lines, Dropped: a.Dropped, Errors: a.Errors}
			}
		}
		st.Frontends = append(st.Frontends, fs)
	}
	for _, pc := range cfg.Pools {
		ps := admin.Pool{Name: pc.Name, Algorithm: pc.Algorithm, Backends: []admin.Backend{}}
		hs := map[string]health.BackendHealth{}
		if h := d.health[pc.Name]; h != nil {
			ps.Healthy = h.Healthy()
			for _, bh := range h.Snapshot() {
				hs[bh.Address] = bh
			}
		}
		if p := d.pools[pc.Name]; p != nil {
			for _, b := range p.Backends() {
				s := b.Stats()
				bh := hs[b.Address()]
				ab := admin.Backend{
					Address: b.Address(), State: b.State().String(), Weight: b.Weight(),
					EffectiveWeight: b.EffectiveWeight() / 1000, Active: int64(b.Active()),
					Total: s.Total, BytesIn: s.BytesIn, BytesOut: s.BytesOut,
					Health: bh.State.String(), ConsecutiveOK: bh.ConsecutiveOK, ConsecutiveFail: bh.ConsecutiveFail,
					LastCheck: bh.LastResult, LastLatency: bh.LastLatency, LastCheckAt: bh.LastCheck,
					Ejections: bh.Ejections, Ejected: bh.Ejected, SlowStartPermille: bh.WeightPermille,
					HealthTransitions: bh.Transitions,
				}
				if b.Ejected() {
					ab.State = "ejected"
				}
				if pc.Algorithm == balance.Resource {
					pct := b.AgentPercent()
					ab.AgentPercent = &pct
				}
				ps.Backends = append(ps.Backends, ab)
			}
		}
		st.Pools = append(st.Pools, ps)
	}
}

// setBackendState applies lbctl drain, enable or disable.
func (d *dataPlane) setBackendState(pool, addr, cmd string) error {
	d.mu.Lock()
	p := d.pools[pool]
	d.mu.Unlock()
	if p == nil {
		return fmt.Errorf("no pool named %q", pool)
	}
	s := map[string]balance.State{admin.CmdDrain: balance.StateDraining, admin.CmdEnable: balance.StateUp, admin.CmdDisable: balance.StateDisabled}[cmd]
	return p.SetState(addr, s)
}

// servingPools reports, for every pool, whether it has a backend that
// takes traffic: what a [[vrrp.track]] pool checks in the VRRP process.
func (d *dataPlane) servingPools() map[string]bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	m := make(map[string]bool, len(d.pools))
	for name, p := range d.pools {
		m[name] = slices.ContainsFunc(p.Backends(), func(b *proxy.Backend) bool { return b.Usable() })
	}
	return m
}

// servingFrontends reports, for every frontend, whether it accepts
// connections: what the implicit proxy track checks in the VRRP process.
func (d *dataPlane) servingFrontends() map[string]bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	m := make(map[string]bool, len(d.frontends))
	for name, f := range d.frontends {
		m[name] = true
		if s, ok := f.(interface{ Serving() bool }); ok {
			m[name] = s.Serving()
		}
	}
	return m
}
