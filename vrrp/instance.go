package vrrp

import (
	"errors"
	"log/slog"
	"net/netip"
	"runtime"
	"sync"
	"time"
)

// PollConn is a Conn whose ReadFrom honours a deadline and can be woken
// from another goroutine: what the Instance loop needs to sleep exactly
// until the Machine's next deadline on one OS thread. RawConn is one.
type PollConn interface {
	Conn
	// SetReadDeadline makes ReadFrom return ErrTimeout at t (zero: never).
	SetReadDeadline(t time.Time)
	// Wake makes a blocked (or the next) ReadFrom return ErrWoken.
	Wake() error
}

// Hooks carry out an Instance's decisions. ClaimVIPs and ReleaseVIPs are
// called on the instance's thread in the order the Machine asks (claim
// before the first advert as master): they must be quick (netlink calls
// are). StateChanged is called from a separate goroutine owned by the
// Instance, so it may log, run notify scripts and update other parts.
type Hooks interface {
	ClaimVIPs()
	// ReleaseVIPs removes the VIPs. handover is true when a demoted master
	// releases them after hearing the new master, which already holds and
	// announces them: the owner may keep them a little longer, so that
	// packets still on their way here are served (make-before-break).
	ReleaseVIPs(handover bool)
	// Reannounce asks for a fresh gratuitous ARP burst: a master heard a
	// lower-priority advert, so another router believed itself master (a
	// split brain healing) and the segment may point at it.
	Reannounce()
	StateChanged(from, to State, priority uint8)
}

// InstanceConfig configures one Instance.
type InstanceConfig struct {
	Name    string
	Machine Config
	// Peers are unicast peers; empty means the multicast group.
	Peers []netip.Addr
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	Log *slog.Logger
}

// Instance runs one Machine: it receives adverts, sleeps until the
// Machine's deadlines, sends adverts and applies actions, all on one locked
// OS thread with real-time priority where the system permits, so that proxy
// work and garbage collection do not delay adverts (a late advert is a
// false failover).
type Instance struct {
	cfg   InstanceConfig
	m     *Machine
	conn  PollConn
	hooks Hooks
	log   *slog.Logger
	now   func() time.Time
	dsts  []netip.Addr

	mu      sync.Mutex // guards the fields below
	pending []instEvent
	snap    InstanceStatus
	stopped bool

	// Owned by the loop's thread; publish copies them into snap.
	maxLate, maxGap time.Duration

	changes chan stateChange
	done    chan struct{}
	notify  sync.WaitGroup
}

// InstanceStatus is a snapshot of an Instance for status reports.
type InstanceStatus struct {
	Status
	Since    time.Time // when the current state began
	Counters Counters
	Packets  PacketCounters
	// AddrListFrom is the source of the latest advert whose address list
	// differed from ours (another cluster using our VRID?).
	AddrListFrom netip.Addr
	// MaxTimerLate is the longest the loop woke after a Machine deadline
	// (an advert to send, a master-down timer): scheduling delay on this
	// node. MaxAdvertGap is the longest time between two adverts received
	// from the same master: what the network and the peer add.
	MaxTimerLate time.Duration
	MaxAdvertGap time.Duration
}

// PacketCounters count packets the receiver dropped before the Machine.
type PacketCounters struct {
	BadChecksum uint64
	BadLength   uint64 // truncated, too long, bad address count
	BadVersion  uint64 // version, type or interval field invalid
	BadFamily   uint64
	SendErrors  uint64
}

type instEvent struct {
	kind    int
	index   int
	failing bool
	done    chan struct{}
}

const (
	evDemote = iota + 1
	evPromote
	evTrack
	evLink
	evStop
)

type stateChange struct {
	from, to State
	prio     uint8
}

// NewInstance returns an Instance that will run m's configuration on conn.
func NewInstance(cfg InstanceConfig, conn PollConn, hooks Hooks) (*Instance, error) {
	m, err := NewMachine(cfg.Machine)
	if err != nil {
		return nil, err
	}
	in := &Instance{
		cfg: cfg, m: m, conn: conn, hooks: hooks, log: cfg.Log, now: cfg.Now,
		changes: make(chan stateChange, 64),
		done:    make(chan struct{}),
	}
	if in.log == nil {
		in.log = slog.New(slog.DiscardHandler)
	}
	if in.now == nil {
		in.now = time.Now
	}
	in.dsts = cfg.Peers
	if len(in.dsts) == 0 {
		g := Group4
		if cfg.Machine.LocalAddr.Is6() {
			g = Group6
		}
		in.dsts = []netip.Addr{g}
	}
	in.snap = InstanceStatus{Status: m.Status(), Since: in.now()}
	return in, nil
}

// Run runs the instance until Stop; it returns once the final priority-0
// advert (if master) is sent and the VIPs released. Call it on a goroutine
// of its own: it locks that goroutine to its OS thread.
func (in *Instance) Run() {
	runtime.LockOSThread()
	// The thread dies with the goroutine rather than carry real-time
	// priority back into the scheduler's pool.
	setRealtime(in.log)
	in.notify.Add(1)
	go in.notifier()
	defer func() {
		close(in.changes)
		in.notify.Wait()
		close(in.done)
	}()

	buf := make([]byte, 1500)
	out := make([]byte, 0, 1500)
	var adv Advert
	adv.Addrs = make([]netip.Addr, 0, 16)
	out = in.apply(in.m.Start(in.now()), out)
	var lastFrom netip.Addr
	var lastAt time.Time
	for {
		dl := in.m.NextDeadline()
		in.conn.SetReadDeadline(dl)
		n, src, dst, err := in.conn.ReadFrom(buf)
		now := in.now() // one clock read per wake-up
		if !dl.IsZero() {
			in.maxLate = max(in.maxLate, now.Sub(dl))
		}
		switch {
		case err == nil:
			if src == lastFrom {
				in.maxGap = max(in.maxGap, now.Sub(lastAt))
			}
			lastFrom, lastAt = src, now
			if perr := ParseInto(&adv, buf[:n], src, dst); perr != nil {
				in.countBad(perr)
				break
			}
			before := in.m.Counters()
			wasMaster := in.m.State() == StateMaster
			out = in.apply(in.m.HandleAdvert(now, src, &adv), out)
			after := in.m.Counters()
			if after.AddrListErrors != before.AddrListErrors {
				in.foreignList(src, &adv)
			}
			switch {
			case wasMaster && in.m.State() == StateMaster && after.LowerPriority != before.LowerPriority:
				// Another router believed itself master: a split brain
				// healing. The segment may point at it: announce again.
				in.hooks.Reannounce()
			case wasMaster && in.m.State() == StateBackup && !in.m.Status().Demoted:
				// We lost to a higher priority, so we were both master.
				// The winner may never have heard us (its advert reached
				// us first): a parting advert at our priority tells it,
				// and it announces the VIPs again. Outside RFC 5798, and
				// harmless: a master discards lower-priority adverts.
				out = in.sendAdvert(in.m.Priority(), out)
			}
		case errors.Is(err, ErrTimeout):
		case errors.Is(err, ErrWoken):
			if in.drain(&out) {
				return
			}
		default:
			in.log.Error("VRRP socket failed", "err", err)
			in.shutdown(&out)
			return
		}
		// A stream of packets must not starve the timers.
		if dl := in.m.NextDeadline(); !dl.IsZero() && !now.Before(dl) {
			out = in.apply(in.m.Tick(now), out)
		}
		in.publish()
	}
}

// drain handles the events posted by other goroutines; it reports true
// after a stop.
func (in *Instance) drain(out *[]byte) bool {
	in.mu.Lock()
	evs := in.pending
	in.pending = nil
	in.mu.Unlock()
	for _, ev := range evs {
		now := in.now()
		switch ev.kind {
		case evDemote:
			*out = in.apply(in.m.Demote(now), *out)
		case evPromote:
			*out = in.apply(in.m.Promote(now), *out)
		case evTrack:
			*out = in.apply(in.m.SetTrack(now, ev.index, ev.failing), *out)
		case evLink:
			*out = in.apply(in.m.SetLink(now, !ev.failing), *out)
		case evStop:
			in.shutdown(out)
			for _, e := range evs {
				if e.done != nil {
					close(e.done)
				}
			}
			return true
		}
		if ev.done != nil {
			close(ev.done)
		}
	}
	in.publish()
	return false
}

func (in *Instance) shutdown(out *[]byte) {
	*out = in.apply(in.m.Shutdown(in.now()), *out)
	in.publish()
}

// apply carries out the Machine's actions in order.
func (in *Instance) apply(acts []Action, out []byte) []byte {
	for _, a := range acts {
		switch a.Kind {
		case ActionSendAdvert:
			out = in.sendAdvert(a.Priority, out)
		case ActionBecomeMaster:
			in.hooks.ClaimVIPs()
			in.changed(StateMaster)
		case ActionReleaseVIPs:
			st := in.m.State()
			in.hooks.ReleaseVIPs(in.m.Status().Demoted && st == StateBackup)
		case ActionBecomeBackup:
			in.changed(StateBackup)
		case ActionBecomeFault:
			in.changed(StateFault)
		case ActionBecomeInit:
			in.changed(StateInit)
		}
	}
	return out
}

// sendAdvert sends an advert with priority prio to the group or every peer.
func (in *Instance) sendAdvert(prio uint8, out []byte) []byte {
	adv := in.m.Advert(prio)
	for _, dst := range in.dsts {
		var err error
		out, err = adv.AppendMarshal(out[:0], in.cfg.Machine.LocalAddr, dst)
		if err == nil {
			err = in.conn.WriteTo(out, in.cfg.Machine.LocalAddr, dst)
		}
		if err != nil {
			in.mu.Lock()
			in.snap.Packets.SendErrors++
			in.mu.Unlock()
			in.log.Warn("sending advert failed", "to", dst, "err", err)
		}
	}
	return out
}

func (in *Instance) changed(to State) {
	in.mu.Lock()
	from := in.snap.State
	in.snap.Since = in.now()
	in.snap.State = to
	in.mu.Unlock()
	select {
	case in.changes <- stateChange{from, to, in.m.Priority()}:
	default:
		in.log.Warn("state change notifications are backing up; dropping one", "to", to)
	}
}

// notifier calls StateChanged off the advert thread.
func (in *Instance) notifier() {
	defer in.notify.Done()
	for c := range in.changes {
		in.hooks.StateChanged(c.from, c.to, c.prio)
	}
}

func (in *Instance) countBad(err error) {
	in.mu.Lock()
	defer in.mu.Unlock()
	p := &in.snap.Packets
	switch {
	case errors.Is(err, ErrChecksum):
		p.BadChecksum++
	case errors.Is(err, ErrTruncated), errors.Is(err, ErrLength), errors.Is(err, ErrAddrCount):
		p.BadLength++
	case errors.Is(err, ErrAddrFamily):
		p.BadFamily++
	default:
		p.BadVersion++
	}
}

func (in *Instance) foreignList(src netip.Addr, adv *Advert) {
	in.mu.Lock()
	first := in.snap.AddrListFrom != src
	in.snap.AddrListFrom = src
	in.mu.Unlock()
	if first {
		in.log.Warn("advert for our VRID carries a different address list: another cluster on this link uses the same vrid?",
			"from", src, "vrid", adv.VRID, "their_addrs", adv.Addrs, "our_addrs", in.cfg.Machine.VIPs)
	}
}

// publish refreshes the snapshot Status returns: one lock per wake-up of
// the advert loop.
func (in *Instance) publish() {
	st := in.m.Status()
	c := in.m.Counters()
	in.mu.Lock()
	in.snap.Status, in.snap.Counters = st, c
	in.snap.MaxTimerLate, in.snap.MaxAdvertGap = in.maxLate, in.maxGap
	in.mu.Unlock()
}

// Status returns the latest snapshot. Safe from any goroutine.
func (in *Instance) Status() InstanceStatus {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.snap
}

// post queues an event for the instance's thread and, when wait is true,
// waits until it was handled.
func (in *Instance) post(ev instEvent, wait bool) {
	if wait {
		ev.done = make(chan struct{})
	}
	in.mu.Lock()
	if in.stopped {
		in.mu.Unlock()
		return
	}
	if ev.kind == evStop {
		in.stopped = true
	}
	in.pending = append(in.pending, ev)
	in.mu.Unlock()
	in.conn.Wake()
	if wait {
		select {
		case <-ev.done:
		case <-in.done:
		}
	}
}

// Demote gives mastership away (priority 0 advert, make-before-break) and
// stays Backup until Promote.
func (in *Instance) Demote() { in.post(instEvent{kind: evDemote}, true) }

// Promote ends a Demote.
func (in *Instance) Promote() { in.post(instEvent{kind: evPromote}, true) }

// SetTrack reports that track i (in Config.Tracks order) fails or recovers.
func (in *Instance) SetTrack(i int, failing bool) {
	in.post(instEvent{kind: evTrack, index: i, failing: failing}, false)
}

// SetLink reports the interface going down (up false) or up.
func (in *Instance) SetLink(up bool) { in.post(instEvent{kind: evLink, failing: !up}, false) }

// Stop shuts the instance down (a master sends priority 0 and releases its
// VIPs) and waits until Run has returned.
func (in *Instance) Stop() {
	in.post(instEvent{kind: evStop}, false)
	<-in.done
}

// Done is closed when Run has returned.
func (in *Instance) Done() <-chan struct{} { return in.done }
