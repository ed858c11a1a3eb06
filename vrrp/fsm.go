package vrrp

import (
	"net/netip"
	"slices"
	"time"
)

// Machine is the RFC 5798 §6.4 state machine of one virtual router
// instance, plus keepalived's Fault state, tracks and preempt_delay, and
// lbd's demote. It does no I/O and reads no clock: its owner feeds it events
// with the current time and carries out the returned Actions in order, then
// sleeps until NextDeadline and calls Tick.
//
// A Machine is not safe for concurrent use: one goroutine owns it. The slice
// of Actions a method returns is reused by the next call.
type Machine struct {
	cfg     Config
	eff     uint8  // effective priority
	failing []bool // per Config.Tracks
	linkUp  bool

	state   State
	demoted bool
	holding bool // the owner holds the VIPs

	// Timers; the zero time means stopped.
	adverAt   time.Time // Adver_Timer, Master only
	downAt    time.Time // Master_Down_Timer, Backup only, stopped while demoted
	releaseAt time.Time // end of the make-before-break hold after Demote
	preemptAt time.Time // preempt_delay; needs no wake-up of its own

	masterInterval time.Duration // Master_Adver_Interval
	masterAddr     netip.Addr
	masterPrio     uint8

	counters Counters
	acts     []Action
}

// NewMachine returns a Machine in Init for cfg, with the link up and no
// track failing. The Machine keeps its own copy of cfg's slices.
func NewMachine(cfg Config) (*Machine, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	cfg.LocalAddr = cfg.LocalAddr.Unmap()
	cfg.VIPs = slices.Clone(cfg.VIPs)
	cfg.Tracks = slices.Clone(cfg.Tracks)
	m := &Machine{
		cfg:            cfg,
		failing:        make([]bool, len(cfg.Tracks)),
		linkUp:         true,
		masterInterval: cfg.Interval,
		acts:           make([]Action, 0, 8),
	}
	m.eff = m.effective()
	return m, nil
}

// State returns the current state.
func (m *Machine) State() State { return m.state }

// Priority returns the effective priority: the configured one, lowered by the
// weights of the failing tracks to no less than 1 (the owner keeps 255).
func (m *Machine) Priority() uint8 { return m.eff }

// Counters returns what the Machine has counted so far.
func (m *Machine) Counters() Counters { return m.counters }

// Status returns a snapshot for status reports.
func (m *Machine) Status() Status {
	return Status{
		State:          m.state,
		Priority:       m.eff,
		Demoted:        m.demoted,
		HoldsVIPs:      m.holding,
		MasterAddr:     m.masterAddr,
		MasterPriority: m.masterPrio,
		MasterInterval: m.masterInterval,
	}
}

// Advert returns the advert this instance sends with priority prio. Its Addrs
// share the Machine's memory and must not be modified. Returning a value
// keeps the send path free of allocations:
//
//	a := m.Advert(act.Priority)
//	buf, err = a.AppendMarshal(buf[:0], src, dst)
func (m *Machine) Advert(prio uint8) Advert {
	return Advert{
		Version:  m.cfg.Version,
		Type:     TypeAdvert,
		VRID:     m.cfg.VRID,
		Priority: prio,
		Interval: m.cfg.Interval,
		Addrs:    m.cfg.VIPs,
		AuthType: m.cfg.AuthType,
		AuthData: m.cfg.AuthData,
	}
}

// NextDeadline returns when Tick must next be called, or the zero time when
// no timer runs (Init, Fault, demoted Backup).
func (m *Machine) NextDeadline() time.Time {
	var next time.Time
	for _, t := range [...]time.Time{m.adverAt, m.downAt, m.releaseAt} {
		if !t.IsZero() && (next.IsZero() || t.Before(next)) {
			next = t
		}
	}
	return next
}

// Start is the RFC 5798 Startup event (§6.4.1): the address owner becomes
// Master at once, any other router Backup with Master_Down_Timer set to
// Master_Down_Interval. With a weight-0 track failing or the link down it
// enters Fault instead; a demoted instance always enters Backup. Start does
// nothing unless the Machine is in Init.
func (m *Machine) Start(now time.Time) []Action {
	m.acts = m.acts[:0]
	if m.state != StateInit {
		return m.acts
	}
	if m.faulty() {
		m.setState(StateFault)
		return m.acts
	}
	m.initialize(now)
	return m.acts
}

// Shutdown is the RFC 5798 Shutdown event: a master sends an advert of
// priority 0 (§6.4.3); every state stops its timers, releases the addresses
// and returns to Init.
func (m *Machine) Shutdown(now time.Time) []Action {
	m.acts = m.acts[:0]
	if m.state == StateInit {
		return m.acts
	}
	if m.state == StateMaster {
		m.send(PriorityStop)
	}
	m.setState(StateInit)
	m.release()
	m.stopTimers()
	return m.acts
}

// Tick fires the timers due at now: Adver_Timer (send an advert),
// Master_Down_Timer (become master) and the end of a demote hold (release
// the addresses). Calling it early or twice is harmless.
func (m *Machine) Tick(now time.Time) []Action {
	m.acts = m.acts[:0]
	if due(m.releaseAt, now) {
		m.release()
	}
	switch m.state {
	case StateMaster:
		if due(m.adverAt, now) {
			m.send(m.eff)
			// Keep the cadence of the timer, unless the owner woke
			// up more than an interval late.
			next := m.adverAt.Add(m.cfg.Interval)
			if !next.After(now) {
				next = now.Add(m.cfg.Interval)
			}
			m.adverAt = next
		}
	case StateBackup:
		if due(m.downAt, now) && !m.demoted {
			m.becomeMaster(now)
		}
	}
	return m.acts
}

// due reports whether timer t is running and has expired at now.
func due(t, now time.Time) bool { return !t.IsZero() && !now.Before(t) }

// initialize is the body of the RFC 5798 Initialize state (§6.4.1), also
// used when Fault clears.
func (m *Machine) initialize(now time.Time) {
	if m.eff == PriorityOwner && !m.demoted {
		m.becomeMaster(now)
		return
	}
	m.masterInterval = m.cfg.Interval
	m.enterBackup(now)
	if m.cfg.PreemptDelay > 0 {
		m.preemptAt = now.Add(m.cfg.PreemptDelay)
	}
}

// becomeMaster takes the instance to Master: the owner adds the addresses
// and announces them, then sends the first advert; Adver_Timer starts.
func (m *Machine) becomeMaster(now time.Time) {
	m.setState(StateMaster)
	m.holding = true
	m.releaseAt = time.Time{}
	m.downAt = time.Time{}
	m.preemptAt = time.Time{}
	m.send(m.eff)
	m.adverAt = now.Add(m.cfg.Interval)
}

// enterBackup takes the instance to Backup with Master_Down_Timer running
// (unless demoted), for the current Master_Adver_Interval.
func (m *Machine) enterBackup(now time.Time) {
	m.setState(StateBackup)
	m.adverAt = time.Time{}
	m.preemptAt = time.Time{}
	m.resetDownTimer(now)
}

// enterFault takes the instance to Fault; a master first tells the others
// with priority 0, as keepalived does.
func (m *Machine) enterFault() {
	if m.state == StateMaster {
		m.send(PriorityStop)
	}
	m.setState(StateFault)
	m.release()
	m.stopTimers()
}

// resetDownTimer sets Master_Down_Timer to Master_Down_Interval from now.
func (m *Machine) resetDownTimer(now time.Time) {
	if m.demoted {
		m.downAt = time.Time{}
		return
	}
	m.downAt = now.Add(m.masterDownInterval())
}

// masterDownInterval is 3 × Master_Adver_Interval + Skew_Time (RFC 5798
// §6.1; RFC 3768 §6.1 with the instance's own interval).
func (m *Machine) masterDownInterval() time.Duration {
	return 3*m.masterInterval + m.skewTime()
}

// skewTime is ((256 − Priority) × Master_Adver_Interval) / 256 in version 3
// (RFC 5798 §6.1), and (256 − Priority) / 256 seconds in version 2
// (RFC 3768 §6.1, as keepalived computes it), with the effective priority
// and without rounding to centiseconds.
func (m *Machine) skewTime() time.Duration {
	unit := m.masterInterval
	if m.cfg.Version == 2 {
		unit = time.Second
	}
	return time.Duration(256-int64(m.eff)) * unit / 256
}

func (m *Machine) stopTimers() {
	m.adverAt, m.downAt, m.releaseAt, m.preemptAt = time.Time{}, time.Time{}, time.Time{}, time.Time{}
}

// setState records a transition and emits its action.
func (m *Machine) setState(s State) {
	if s == m.state {
		return
	}
	m.counters.Transitions++
	if m.state == StateMaster {
		m.counters.ReleaseMaster++
	}
	m.state = s
	switch s {
	case StateMaster:
		m.counters.BecomeMaster++
		m.emit(Action{Kind: ActionBecomeMaster})
	case StateBackup:
		m.emit(Action{Kind: ActionBecomeBackup})
	case StateFault:
		m.emit(Action{Kind: ActionBecomeFault})
	case StateInit:
		m.emit(Action{Kind: ActionBecomeInit})
	}
}

// send emits an advert of priority prio.
func (m *Machine) send(prio uint8) {
	m.counters.AdvertsSent++
	if prio == PriorityStop {
		m.counters.PriorityZeroSent++
	}
	m.emit(Action{Kind: ActionSendAdvert, Priority: prio})
}

// release emits ActionReleaseVIPs if the owner holds the addresses.
func (m *Machine) release() {
	m.releaseAt = time.Time{}
	if !m.holding {
		return
	}
	m.holding = false
	m.emit(Action{Kind: ActionReleaseVIPs})
}

func (m *Machine) emit(a Action) { m.acts = append(m.acts, a) }
