package health

import (
	"time"

	"lbd/proxy/balance"
)

// Healthy returns how many backends are in rotation as far as health is
// concerned: not UNHEALTHY and not ejected. Operator states (drain,
// disable) do not count. Zero is the proxy's cue for its panic setting.
func (p *Pool) Healthy() int { return int(p.healthy.Load()) }

// Available reports whether the pool has at least one healthy backend.
func (p *Pool) Available() bool { return p.Healthy() > 0 }

// Watch returns a channel that holds whether the pool has at least one
// healthy backend: the current value at once, then each change. A slow
// reader misses intermediate values but always gets the latest one, as a
// VRRP pool track wants. The channel is closed by Close.
func (p *Pool) Watch() <-chan bool {
	ch := make(chan bool, 1)
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		close(ch)
		return ch
	}
	ch <- p.available
	p.watchers = append(p.watchers, ch)
	return ch
}

// recount refreshes Healthy and publishes a change of availability. It
// runs with p.mu held.
func (p *Pool) recount() {
	n := p.count()
	p.healthy.Store(int32(n))
	avail := n > 0
	if avail == p.available {
		return
	}
	p.available = avail
	if avail {
		p.log.Info("pool has a healthy backend again", "healthy", n)
	} else {
		p.log.Warn("pool has no healthy backend", "backends", len(p.members))
	}
	for _, w := range p.watchers {
		select { // only this goroutine sends (p.mu), so after the drain the send cannot block
		case <-w:
		default:
		}
		w <- avail
	}
}

// count returns how many backends are in rotation; p.mu is held.
func (p *Pool) count() int {
	n := 0
	for _, m := range p.members {
		if m.inRotation() {
			n++
		}
	}
	return n
}

// change applies fn to m's guarded fields, then brings the backend, the
// slow-start ramp and the pool's count in line. It runs with p.mu held.
func (p *Pool) change(m *member, now time.Time, fn func()) {
	was := m.inRotation()
	fn()
	is := m.inRotation()
	switch {
	case !was && is && p.slowStart > 0:
		// Lower the weight before the backend re-enters, never after.
		_ = m.b.SetWeightPermille(100)
		m.ramping, m.rampStart = true, now
		p.wake()
	case was && !is:
		m.ramping = false // starts again from 10 % on return
	}
	p.syncBackend(m)
	if was != is {
		p.recount()
	}
}

// syncBackend sets the backend's Up/Down state and ejection to match m.
// Draining and Disabled belong to the operator and are left alone.
func (p *Pool) syncBackend(m *member) {
	want := balance.StateUp
	if m.state == Unhealthy {
		want = balance.StateDown
	}
	if cur := m.b.State(); cur != want && (cur == balance.StateUp || cur == balance.StateDown) {
		_ = m.b.SetState(want)
	}
	if m.b.Ejected() != m.ejected {
		m.b.SetEjected(m.ejected)
	}
	m.ejectedNow.Store(m.ejected)
}
