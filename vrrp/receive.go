package vrrp

import (
	"net/netip"
	"time"
)

// HandleAdvert is the receipt of an ADVERTISEMENT from src (the IP source) at
// now, already checked by Parse and by the receiver (TTL 255). It ignores our
// own adverts looped back, adverts of another VRID or version and, in
// version 2, adverts whose interval or authentication differ from ours
// (RFC 3768 §7.1); each is counted. Then it runs RFC 5798 §6.4.2 in Backup
// and §6.4.3 in Master. Adverts change nothing in Init and Fault.
func (m *Machine) HandleAdvert(now time.Time, src netip.Addr, adv *Advert) []Action {
	m.acts = m.acts[:0]
	if m.state == StateInit || adv == nil {
		return m.acts
	}
	src = src.Unmap()
	if src == m.cfg.LocalAddr {
		m.counters.OwnAdverts++
		return m.acts
	}
	m.counters.AdvertsReceived++
	if !m.accept(adv) {
		return m.acts
	}
	if adv.Priority == PriorityStop {
		m.counters.PriorityZeroReceived++
	}
	switch m.state {
	case StateBackup:
		m.backupAdvert(now, src, adv)
	case StateMaster:
		m.masterAdvert(now, src, adv)
	}
	return m.acts
}

// accept runs the receive checks that compare an advert with the local
// configuration, counting each failure.
func (m *Machine) accept(adv *Advert) bool {
	switch {
	case adv.VRID != m.cfg.VRID:
		m.counters.VRIDErrors++
		return false
	case adv.Version != m.cfg.Version:
		m.counters.VersionErrors++
		return false
	}
	if m.cfg.Version == 2 {
		if adv.Interval != m.cfg.Interval {
			m.counters.IntervalErrors++
			return false
		}
		if adv.AuthType != m.cfg.AuthType || adv.AuthType == AuthSimple && adv.AuthData != m.cfg.AuthData {
			m.counters.AuthErrors++
			return false
		}
	}
	if !sameAddrs(adv.Addrs, m.cfg.VIPs) {
		m.counters.AddrListErrors++
		// RFC 3768 §7.1 MUST drop unless the owner sent it; RFC 5798 §7.1
		// only asks to log. Like keepalived, drop in both versions unless
		// from the owner: a different list means another cluster using our
		// VRID on this link, which must not take our VIPs away. The owner
		// of the instance reports and logs the drops.
		if adv.Priority != PriorityOwner {
			return false
		}
	}
	return true
}

// sameAddrs reports whether a and b hold the same addresses in any order.
// Lists are short; the quadratic scan does not allocate.
func sameAddrs(a, b []netip.Addr) bool {
	if len(a) != len(b) {
		return false
	}
	for _, x := range a {
		found := false
		for _, y := range b {
			if x == y {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}

// backupAdvert is RFC 5798 §6.4.2, "If an ADVERTISEMENT is received", with
// keepalived's preempt_delay and lbd's make-before-break release.
func (m *Machine) backupAdvert(now time.Time, src netip.Addr, adv *Advert) {
	if adv.Priority == PriorityStop {
		// Set Master_Down_Timer to Skew_Time.
		if !m.demoted {
			m.downAt = now.Add(m.skewTime())
		}
		return
	}
	// Another router is master: a demoted instance still holding the
	// addresses can let them go now.
	m.release()
	m.masterAddr, m.masterPrio = src, adv.Priority
	preempt := m.cfg.Preempt || m.eff == PriorityOwner
	if preempt && adv.Priority < m.eff && !m.preemptHeld(now) {
		m.counters.LowerPriority++
		return // discard: let Master_Down_Timer fire
	}
	if m.cfg.Version == 3 {
		m.masterInterval = adv.Interval
	}
	m.resetDownTimer(now)
	if m.cfg.PreemptDelay > 0 {
		if adv.Priority >= m.eff {
			m.preemptAt = time.Time{}
		} else if m.preemptAt.IsZero() {
			m.preemptAt = now.Add(m.cfg.PreemptDelay)
		}
	}
}

// preemptHeld reports whether preempt_delay still holds preemption back:
// its timer has not started (it starts now) or has not expired.
func (m *Machine) preemptHeld(now time.Time) bool {
	return m.cfg.PreemptDelay > 0 && (m.preemptAt.IsZero() || m.preemptAt.After(now))
}

// masterAdvert is RFC 5798 §6.4.3, "If an ADVERTISEMENT is received".
func (m *Machine) masterAdvert(now time.Time, src netip.Addr, adv *Advert) {
	if adv.Priority == PriorityStop {
		m.send(m.eff)
		m.adverAt = now.Add(m.cfg.Interval)
		return
	}
	if adv.Priority > m.eff || adv.Priority == m.eff && src.Compare(m.cfg.LocalAddr) > 0 {
		m.masterAddr, m.masterPrio = src, adv.Priority
		m.masterInterval = m.cfg.Interval
		if m.cfg.Version == 3 {
			m.masterInterval = adv.Interval
		}
		m.enterBackup(now)
		m.release()
		return
	}
	// Discard, but answer at once so that the lower-priority router,
	// which believes it is master, hears us (keepalived does so unless
	// lower_prio_no_advert). Adver_Timer keeps its cadence.
	m.counters.LowerPriority++
	m.send(m.eff)
}
