package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os/exec"
	"reflect"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"lbd/admin"
	"lbd/config"
	"lbd/vip"
	"lbd/vrrp"
)

// notifyTimeout bounds a notify script when the instance sets none.
const defaultNotifyTimeout = 5 * time.Second

// vrrpInstance is one [[vrrp]] running: the election (vrrp.Instance on its
// own thread), the VIPs it owns (vip.Owner) and the watchers that feed it
// link and track changes.
type vrrpInstance struct {
	cfg   config.VRRP
	in    *vrrp.Instance
	conn  *vrrp.RawConn
	owner *vip.Owner
	log   *slog.Logger
	pools poolView

	stop     chan struct{}
	wg       sync.WaitGroup // run loop, watchers, notify scripts
	restored atomic.Uint64  // VIPs put back after someone removed them

	// served names the frontends bound to this instance's VIPs (or to
	// any address): the local proxy, tracked implicitly. Set by apply.
	served atomic.Pointer[[]string]

	trackMu sync.Mutex // guards failing
	failing []bool     // per track, the proxy track last: for lbctl status

	lastReannounce atomic.Int64 // unix ns of the latest split-brain re-announce

	relMu          sync.Mutex  // guards pendingRelease
	pendingRelease *time.Timer // a handover release waiting out handoverGrace
}

// startVRRP starts one instance: it removes VIPs a crashed lbd left behind,
// opens the raw socket and starts the election in Init → Backup.
func startVRRP(cfg config.VRRP, pools poolView, log *slog.Logger) (*vrrpInstance, error) {
	log = log.With("instance", cfg.Name)
	local, err := localAddr(cfg)
	if err != nil {
		return nil, err
	}
	family := 4
	if local.Is6() {
		family = 6
	}
	vips := make([]netip.Addr, len(cfg.VIPs))
	for i, p := range cfg.VIPs {
		vips[i] = p.Addr()
	}
	// The configured tracks, then the local proxy: weight 0, so a proxy
	// that stops accepting puts the instance in FAULT and the peer whose
	// proxy serves takes the VIPs.
	tracks := make([]vrrp.Track, len(cfg.Tracks), len(cfg.Tracks)+1)
	for i, t := range cfg.Tracks {
		tracks[i] = vrrp.Track{Name: trackName(t), Weight: t.Weight}
	}
	tracks = append(tracks, vrrp.Track{Name: proxyTrack, Weight: 0})
	v := &vrrpInstance{cfg: cfg, log: log, pools: pools, stop: make(chan struct{}), failing: make([]bool, len(tracks))}
	v.served.Store(&[]string{})
	v.owner = vip.New(vip.Config{
		Interface: cfg.Interface, VIPs: cfg.VIPs, GARPRepeat: cfg.GARPRepeat,
		GARPInterval: cfg.GARPInterval.D(), GARPRefresh: cfg.GARPRefresh.D(),
	}, vip.NewKernel(), log)
	if stale, err := v.owner.RemoveStale(); err != nil {
		return nil, fmt.Errorf("node: vrrp %s: %w", cfg.Name, err)
	} else if len(stale) > 0 {
		log.Warn("removed VIPs left by an earlier run", "vips", stale)
	}
	v.conn, err = vrrp.ListenRaw(cfg.Interface, family)
	if err != nil {
		return nil, fmt.Errorf("node: vrrp %s: %w", cfg.Name, err)
	}
	v.in, err = vrrp.NewInstance(vrrp.InstanceConfig{
		Name: cfg.Name,
		Machine: vrrp.Config{
			Version: cfg.Version, VRID: uint8(cfg.VRID), Priority: uint8(cfg.Priority),
			Interval: cfg.AdvertInterval.D(), Preempt: cfg.Preempt, PreemptDelay: cfg.PreemptDelay.D(),
			LocalAddr: local, VIPs: vips, Tracks: tracks,
		},
		Peers: cfg.UnicastPeers,
		Log:   log,
	}, v.conn, v)
	if err != nil {
		v.conn.Close()
		return nil, fmt.Errorf("node: vrrp %s: %w", cfg.Name, err)
	}
	v.wg.Go(v.in.Run)
	v.wg.Go(v.watch)
	for i, t := range cfg.Tracks {
		if t.Script != "" {
			v.wg.Go(func() { v.runScriptTrack(i, t) })
		}
	}
	log.Info("VRRP instance started", "interface", cfg.Interface, "vrid", cfg.VRID, "priority", cfg.Priority,
		"version", cfg.Version, "advert_interval", cfg.AdvertInterval, "local", local)
	return v, nil
}

// localAddr is the instance's primary address: the first address of the
// VIPs' family on the interface that is not a VIP; for IPv6 the link-local
// address (RFC 5798 §5.1.2.2).
func localAddr(cfg config.VRRP) (netip.Addr, error) {
	want4 := len(cfg.VIPs) == 0 || cfg.VIPs[0].Addr().Is4()
	ifi, err := net.InterfaceByName(cfg.Interface)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("node: vrrp %s: %w", cfg.Name, err)
	}
	addrs, err := ifi.Addrs()
	if err != nil {
		return netip.Addr{}, fmt.Errorf("node: vrrp %s: addresses of %s: %w", cfg.Name, cfg.Interface, err)
	}
	for _, a := range addrs {
		ipn, ok := a.(*net.IPNet)
		if !ok {
			continue
		}
		ip, _ := netip.AddrFromSlice(ipn.IP)
		ip = ip.Unmap()
		isVIP := false
		for _, v := range cfg.VIPs {
			isVIP = isVIP || v.Addr() == ip
		}
		switch {
		case isVIP:
		case want4 && ip.Is4():
			return ip, nil
		case !want4 && ip.Is6() && ip.IsLinkLocalUnicast():
			return ip.WithZone(""), nil
		}
	}
	fam := "IPv4"
	if !want4 {
		fam = "IPv6 link-local"
	}
	return netip.Addr{}, fmt.Errorf("node: vrrp %s: interface %s has no %s address to send adverts from", cfg.Name, cfg.Interface, fam)
}

func trackName(t config.Track) string {
	switch {
	case t.Interface != "":
		return "interface " + t.Interface
	case t.Pool != "":
		return "pool " + t.Pool
	default:
		return "script " + t.Script
	}
}

// ClaimVIPs adds the VIPs and starts gratuitous ARP (vrrp.Hooks).
func (v *vrrpInstance) ClaimVIPs() {
	v.cancelRelease()
	if err := v.owner.Claim(); err != nil {
		v.log.Error("claiming VIPs failed", "err", err)
	}
}

// handoverGrace is how long a demoted master keeps the VIPs after the new
// master took them: longer than Linux's neighbour locktime (1 s), within
// which a client ignores a new gratuitous ARP for an entry it just updated,
// and than the new master's second announcement (vip.SecondBurst).
const handoverGrace = 2 * time.Second

// ReleaseVIPs removes the VIPs (vrrp.Hooks); after a demote handover it
// waits handoverGrace first, serving what still arrives here.
func (v *vrrpInstance) ReleaseVIPs(handover bool) {
	v.cancelRelease()
	if !handover {
		v.release()
		return
	}
	v.relMu.Lock()
	v.pendingRelease = time.AfterFunc(handoverGrace, v.release)
	v.relMu.Unlock()
}

func (v *vrrpInstance) release() {
	if err := v.owner.Release(); err != nil {
		v.log.Error("releasing VIPs failed", "err", err)
	}
}

// cancelRelease stops a pending handover release.
func (v *vrrpInstance) cancelRelease() {
	v.relMu.Lock()
	if v.pendingRelease != nil {
		v.pendingRelease.Stop()
		v.pendingRelease = nil
	}
	v.relMu.Unlock()
}

// Reannounce restarts gratuitous ARP after a split brain healed, at most
// once per second (vrrp.Hooks).
func (v *vrrpInstance) Reannounce() {
	now := time.Now().UnixNano()
	last := v.lastReannounce.Load()
	if now-last < int64(time.Second) || !v.lastReannounce.CompareAndSwap(last, now) {
		return
	}
	v.log.Warn("heard a lower-priority master: split brain healing, announcing the VIPs again")
	v.owner.Announce()
}

// StateChanged logs the transition and runs the notify script (vrrp.Hooks).
func (v *vrrpInstance) StateChanged(from, to vrrp.State, prio uint8) {
	v.log.Info("VRRP state changed", "from", from, "to", to, "priority", prio)
	if v.cfg.Notify == "" {
		return
	}
	timeout := v.cfg.NotifyTimeout.D()
	if timeout <= 0 {
		timeout = defaultNotifyTimeout
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	name, args := vrrp.NormalPriorityCommand(v.cfg.Notify, v.cfg.Name, to.String(), strconv.Itoa(int(prio)))
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	if err != nil {
		v.log.Warn("notify script failed", "script", v.cfg.Notify, "err", err, "output", string(out))
	}
}

// watchEvery is how often links, pool tracks and the VIPs are checked: one
// advert interval, as the guard rail against a removed VIP asks, but not
// more often than every 20ms nor less often than every second.
func (v *vrrpInstance) watchEvery() time.Duration {
	return min(max(v.cfg.AdvertInterval.D(), 20*time.Millisecond), time.Second)
}

// watch follows the interface's carrier, interface and pool tracks, and
// restores VIPs someone removed while this node is master.
func (v *vrrpInstance) watch() {
	t := time.NewTicker(v.watchEvery())
	defer t.Stop()
	link := true
	failing := make([]bool, len(v.cfg.Tracks))
	var proxyDown []string
	for {
		if up := linkUp(v.cfg.Interface); up != link {
			link = up
			v.log.Warn("interface carrier changed", "interface", v.cfg.Interface, "up", up)
			v.in.SetLink(up)
		}
		for i, tr := range v.cfg.Tracks {
			var fail bool
			switch {
			case tr.Interface != "":
				fail = !linkUp(tr.Interface)
			case tr.Pool != "":
				fail = !v.pools.poolServing(tr.Pool)
			default:
				continue
			}
			if fail != failing[i] {
				failing[i] = fail
				v.log.Warn("track changed", "track", trackName(tr), "failing", fail, "weight", tr.Weight)
				v.setTrack(i, fail)
			}
		}
		var down []string
		for _, name := range *v.served.Load() {
			if !v.pools.frontendServing(name) {
				down = append(down, name)
			}
		}
		if (len(down) > 0) != (len(proxyDown) > 0) {
			if len(down) > 0 {
				v.log.Error("the local proxy stopped accepting on the VIPs: FAULT, so that the peer takes over", "frontends", down)
			} else {
				v.log.Info("the local proxy accepts again", "frontends", proxyDown)
			}
			v.setTrack(len(v.cfg.Tracks), len(down) > 0)
		}
		proxyDown = down
		if restored, err := v.owner.Verify(); err != nil {
			v.log.Error("checking VIPs failed", "err", err)
		} else if len(restored) > 0 {
			v.restored.Add(uint64(len(restored)))
			v.log.Warn("VIPs were removed from the interface by someone else; restored and re-announced", "vips", restored)
		}
		select {
		case <-v.stop:
			return
		case <-t.C:
		}
	}
}

// proxyTrack names the implicit track of the local proxy.
const proxyTrack = "proxy"

// setTrack tells the election that track i (the proxy track after the
// configured ones) fails or recovers, and remembers it for lbctl status.
func (v *vrrpInstance) setTrack(i int, fail bool) {
	v.trackMu.Lock()
	v.failing[i] = fail
	v.trackMu.Unlock()
	v.in.SetTrack(i, fail)
}

// failingTracks names the tracks failing now.
func (v *vrrpInstance) failingTracks() []string {
	v.trackMu.Lock()
	defer v.trackMu.Unlock()
	var out []string
	for i, f := range v.failing {
		if !f {
			continue
		}
		if i < len(v.cfg.Tracks) {
			out = append(out, trackName(v.cfg.Tracks[i]))
		} else {
			out = append(out, proxyTrack)
		}
	}
	return out
}

// servedFrontends names the frontends of cfg that serve the VIPs of vc:
// bound to one of them, or to every address.
func servedFrontends(vc config.VRRP, cfg *config.Config) []string {
	var out []string
	for _, fc := range cfg.Frontends {
		host, _, err := net.SplitHostPort(fc.Bind)
		if err != nil {
			continue
		}
		a, err := netip.ParseAddr(host)
		if host != "" && err != nil {
			continue
		}
		if host == "" || a.IsUnspecified() || slices.ContainsFunc(vc.VIPs, func(p netip.Prefix) bool { return p.Addr() == a.Unmap() }) {
			out = append(out, fc.Name)
		}
	}
	return out
}

// linkUp reports whether the interface exists, is up and has carrier.
func linkUp(name string) bool {
	ifi, err := net.InterfaceByName(name)
	return err == nil && ifi.Flags&net.FlagUp != 0 && ifi.Flags&net.FlagRunning != 0
}

// runScriptTrack runs a script track every interval: it fails after fall
// consecutive failures (non-zero exit or timeout) and recovers after rise
// consecutive successes, as keepalived's vrrp_script does.
func (v *vrrpInstance) runScriptTrack(i int, tr config.Track) {
	t := time.NewTicker(tr.Interval.D())
	defer t.Stop()
	failing := false
	ok, bad := 0, 0
	for {
		ctx, cancel := context.WithTimeout(context.Background(), tr.Timeout.D())
		name, args := vrrp.NormalPriorityCommand(tr.Script)
		err := exec.CommandContext(ctx, name, args...).Run()
		cancel()
		if err == nil {
			ok, bad = ok+1, 0
		} else {
			ok, bad = 0, bad+1
		}
		switch {
		case failing && ok >= tr.Rise:
			failing = false
			v.log.Info("track script recovered", "script", tr.Script)
			v.setTrack(i, false)
		case !failing && bad >= tr.Fall:
			failing = true
			v.log.Warn("track script failing", "script", tr.Script, "err", err)
			v.setTrack(i, true)
		}
		select {
		case <-v.stop:
			return
		case <-t.C:
		}
	}
}

// close stops the instance (a master sends priority 0 and releases its
// VIPs) and waits for all its goroutines.
func (v *vrrpInstance) close() {
	close(v.stop)
	v.in.Stop()
	v.cancelRelease()
	v.wg.Wait()
	v.owner.Close()
	v.conn.Close()
}

// status reports the instance for lbctl status.
func (v *vrrpInstance) status() admin.Instance {
	st := v.in.Status()
	vips := make([]string, len(v.cfg.VIPs))
	for i, p := range v.cfg.VIPs {
		vips[i] = p.String()
	}
	master := ""
	switch {
	case st.State == vrrp.StateMaster:
		master = "self"
	case st.MasterAddr.IsValid():
		master = st.MasterAddr.String()
	}
	c := st.Counters
	in := admin.Instance{
		Name: v.cfg.Name, Interface: v.cfg.Interface, VRID: v.cfg.VRID, Version: v.cfg.Version,
		State: st.State.String(), Priority: v.cfg.Priority, EffectivePriority: int(st.Priority),
		Master: master, Since: st.Since, VIPs: vips, Demoted: st.Demoted, FailingTracks: v.failingTracks(),
		MaxTimerLate: st.MaxTimerLate, MaxAdvertGap: st.MaxAdvertGap,
		Counters: map[string]uint64{
			"adverts_sent":           c.AdvertsSent,
			"adverts_received":       c.AdvertsReceived,
			"priority_zero_sent":     c.PriorityZeroSent,
			"priority_zero_received": c.PriorityZeroReceived,
			"transitions":            c.Transitions,
			"became_master":          c.BecomeMaster,
			"wrong_vrid":             c.VRIDErrors,
			"wrong_version":          c.VersionErrors,
			"interval_errors":        c.IntervalErrors,
			"auth_errors":            c.AuthErrors,
			"addr_list_errors":       c.AddrListErrors,
			"bad_checksum":           st.Packets.BadChecksum,
			"bad_ttl":                v.conn.BadTTL.Load(),
			"bad_length":             st.Packets.BadLength,
			"bad_header":             st.Packets.BadVersion + st.Packets.BadFamily,
			"send_errors":            st.Packets.SendErrors,
			"vips_restored":          v.restored.Load(),
			"garp_rounds":            v.owner.Announced(),
		},
	}
	if st.AddrListFrom.IsValid() {
		in.Warnings = append(in.Warnings, fmt.Sprintf("%d adverts for vrid %d with a different address list, last from %s: another cluster using the same vrid on this link?", c.AddrListErrors, v.cfg.VRID, st.AddrListFrom))
	}
	if n := v.restored.Load(); n > 0 {
		in.Warnings = append(in.Warnings, fmt.Sprintf("VIPs were removed by someone else %d times and restored", n))
	}
	return in
}

// vrrpSet owns every running instance.
type vrrpSet struct {
	log   *slog.Logger
	pools poolView

	mu  sync.Mutex // guards all
	ins map[string]*vrrpInstance
}

// poolView tells pool tracks whether a pool can serve, and the proxy
// track whether a frontend accepts.
type poolView interface {
	poolServing(name string) bool
	frontendServing(name string) bool
}

func newVRRPSet(pools poolView, log *slog.Logger) *vrrpSet {
	return &vrrpSet{log: log, pools: pools, ins: map[string]*vrrpInstance{}}
}

// apply starts, keeps, restarts or stops instances to match cfg. An
// instance whose section did not change keeps running untouched (no flap).
func (s *vrrpSet) apply(cfg *config.Config) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	next := make(map[string]*vrrpInstance, len(cfg.VRRP))
	var errs []error
	for _, vc := range cfg.VRRP {
		if old := s.ins[vc.Name]; old != nil && reflect.DeepEqual(old.cfg, vc) {
			next[vc.Name] = old
			continue
		}
		if old := s.ins[vc.Name]; old != nil {
			s.log.Info("VRRP instance changed, restarting it", "instance", vc.Name)
			old.close()
			delete(s.ins, vc.Name)
		}
		v, err := startVRRP(vc, s.pools, s.log)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		next[vc.Name] = v
	}
	for _, vc := range cfg.VRRP {
		if v := next[vc.Name]; v != nil {
			served := servedFrontends(vc, cfg)
			v.served.Store(&served)
		}
	}
	for name, v := range s.ins {
		if next[name] != v {
			s.log.Info("VRRP instance removed", "instance", name)
			v.close()
		}
	}
	s.ins = next
	return errors.Join(errs...)
}

// stop stops every instance: masters send priority 0 so their peers take
// over after skew time, and release their VIPs.
func (s *vrrpSet) stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	var wg sync.WaitGroup
	for _, v := range s.ins {
		wg.Go(v.close)
	}
	wg.Wait()
	s.ins = map[string]*vrrpInstance{}
}

// each runs fn for the named instance, or for all when name is empty.
func (s *vrrpSet) each(name string, fn func(*vrrpInstance)) error {
	s.mu.Lock()
	list := make([]*vrrpInstance, 0, len(s.ins))
	for n, v := range s.ins {
		if name == "" || n == name {
			list = append(list, v)
		}
	}
	s.mu.Unlock()
	if len(list) == 0 {
		if name == "" {
			return errors.New("no VRRP instance is configured")
		}
		return fmt.Errorf("no VRRP instance named %q", name)
	}
	for _, v := range list {
		fn(v)
	}
	return nil
}

// instances reports every running instance, in name order.
func (s *vrrpSet) instances() []admin.Instance {
	s.mu.Lock()
	defer s.mu.Unlock()
	names := make([]string, 0, len(s.ins))
	for n := range s.ins {
		names = append(names, n)
	}
	slices.Sort(names)
	out := make([]admin.Instance, 0, len(names))
	for _, n := range names {
		out = append(out, s.ins[n].status())
	}
	return out
}
