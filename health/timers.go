package health

import (
	"time"

	"lbd/proxy/balance"
)

// wake makes run look at ejections and ramps again.
func (p *Pool) wake() {
	select {
	case p.kick <- struct{}{}:
	default:
	}
}

// run ends ejections and steps slow-start ramps, sleeping until the next
// one is due.
func (p *Pool) run() {
	defer p.wg.Done()
	t := time.NewTimer(time.Hour)
	defer t.Stop()
	for {
		p.mu.Lock()
		next := p.tick(time.Now())
		p.mu.Unlock()
		if next.IsZero() {
			t.Stop()
		} else {
			t.Reset(time.Until(next))
		}
		select {
		case <-p.ctx.Done():
			return
		case <-p.kick:
		case <-t.C:
		}
	}
}

// tick ends the ejections that are due and steps every ramp; it returns
// when it wants to run again (zero: nothing pending). p.mu is held.
func (p *Pool) tick(now time.Time) time.Time {
	var next time.Time
	due := func(t time.Time) {
		if next.IsZero() || t.Before(next) {
			next = t
		}
	}
	for _, m := range p.members {
		if m.ejected {
			if now.Before(m.until) {
				due(m.until)
			} else {
				p.endEjection(m, now)
			}
		}
		if m.ramping {
			pm := balance.SlowStartPermille(now.Sub(m.rampStart), p.slowStart)
			_ = m.b.SetWeightPermille(pm)
			if pm < 1000 {
				due(now.Add(p.rampStep))
			} else {
				m.ramping = false
				p.log.Debug("slow start done", "backend", m.addr)
			}
		}
	}
	return next
}
