package vrrp

import "time"

// SetTrack records whether track i (an index into Config.Tracks) fails. A
// weighted track changes the effective priority, which the next advert
// carries; a weight-0 track moves the instance into Fault, and out of it
// (through Initialize) when no such failure remains. Unknown indexes are
// ignored.
func (m *Machine) SetTrack(now time.Time, i int, failing bool) []Action {
	m.acts = m.acts[:0]
	if i < 0 || i >= len(m.failing) || m.failing[i] == failing {
		return m.acts
	}
	m.failing[i] = failing
	m.eff = m.effective()
	m.reconcileFault(now)
	return m.acts
}

// SetLink records whether the instance's interface is up (carrier and
// address): down means Fault, as a failing weight-0 track does.
func (m *Machine) SetLink(now time.Time, up bool) []Action {
	m.acts = m.acts[:0]
	if m.linkUp == up {
		return m.acts
	}
	m.linkUp = up
	m.reconcileFault(now)
	return m.acts
}

// Demote is `lbctl demote`: the instance gives up mastership and stays Backup,
// whatever its timers say, until Promote. A master advertises priority 0 once,
// so that the best backup takes over after its Skew_Time, and keeps the
// addresses until it hears another router's advert, or for at most
// Master_Down_Interval: ActionReleaseVIPs comes from HandleAdvert or Tick
// (make-before-break; see the package doc).
func (m *Machine) Demote(now time.Time) []Action {
	m.acts = m.acts[:0]
	if m.demoted {
		return m.acts
	}
	m.demoted = true
	switch m.state {
	case StateMaster:
		m.send(PriorityStop)
		m.masterInterval = m.cfg.Interval
		m.enterBackup(now) // demoted: Master_Down_Timer stays stopped
		m.releaseAt = now.Add(m.masterDownInterval())
	case StateBackup:
		m.downAt = time.Time{}
	}
	return m.acts
}

// Promote is `lbctl promote`: it ends Demote. A backup starts
// Master_Down_Timer afresh and takes part in elections again.
func (m *Machine) Promote(now time.Time) []Action {
	m.acts = m.acts[:0]
	if !m.demoted {
		return m.acts
	}
	m.demoted = false
	if m.state == StateBackup {
		m.resetDownTimer(now)
	}
	return m.acts
}

// faulty reports whether the link is down or a weight-0 track fails.
func (m *Machine) faulty() bool {
	if !m.linkUp {
		return true
	}
	for i, f := range m.failing {
		if f && m.cfg.Tracks[i].Weight == 0 {
			return true
		}
	}
	return false
}

// effective computes the effective priority: the owner keeps 255 (Config
// forbids weighted tracks there); any other router loses the weights of its
// failing tracks, clamped to 1..254.
func (m *Machine) effective() uint8 {
	if m.cfg.Priority == PriorityOwner {
		return PriorityOwner
	}
	p := int(m.cfg.Priority)
	for i, f := range m.failing {
		if f {
			p -= m.cfg.Tracks[i].Weight
		}
	}
	return uint8(min(max(p, 1), 254))
}

// reconcileFault enters or leaves Fault after a track or link change.
func (m *Machine) reconcileFault(now time.Time) {
	if m.state == StateInit {
		return // Start decides
	}
	switch f := m.faulty(); {
	case f && m.state != StateFault:
		m.enterFault()
	case !f && m.state == StateFault:
		m.initialize(now)
	}
}
