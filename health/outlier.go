package health

import (
	"fmt"
	"time"

	"lbd/config"
	"lbd/proxy/balance"
)

// outlierConfig is [pool.outlier].
type outlierConfig struct {
	consecutive int64         // errors in a row that eject; 0: off
	ejectTime   time.Duration // first ejection
	maxEject    time.Duration // longest ejection
	percent     int           // max_ejection_percent
}

func (o *outlierConfig) set(c config.Outlier) error {
	*o = outlierConfig{
		consecutive: int64(c.ConsecutiveErrors),
		ejectTime:   c.EjectionTime.D(),
		maxEject:    c.MaxEjectionTime.D(),
		percent:     c.MaxEjectionPercent,
	}
	switch {
	case c.ConsecutiveErrors < 0:
		return fmt.Errorf("outlier consecutive_errors %d is negative", c.ConsecutiveErrors)
	case c.ConsecutiveErrors == 0:
		return nil
	case o.ejectTime <= 0:
		return fmt.Errorf("outlier ejection_time %s is not positive", c.EjectionTime)
	case o.maxEject < o.ejectTime:
		return fmt.Errorf("outlier max_ejection_time %s is shorter than ejection_time %s", c.MaxEjectionTime, c.EjectionTime)
	case o.percent < 0 || o.percent > 100:
		return fmt.Errorf("outlier max_ejection_percent %d is out of range 0..100", c.MaxEjectionPercent)
	}
	return nil
}

// Report tells outlier detection how one request or connection to b
// ended. The proxy calls it on its hot path: it takes no lock and does not
// allocate, except on the error that reaches consecutive_errors, which
// decides on an ejection. Reports for backends of other pools are ignored.
func (p *Pool) Report(b *balance.Backend, o Outcome) {
	m := p.byBackend[b]
	if m == nil {
		return
	}
	if o == Success {
		if m.consecErrors.Load() != 0 { // no write, no cache-line bouncing, while all is well
			m.consecErrors.Store(0)
		}
		return
	}
	if o < numOutcomes {
		m.errs[o].Add(1)
	}
	if p.outlier.consecutive == 0 || m.ejectedNow.Load() {
		return
	}
	if m.consecErrors.Add(1) == p.outlier.consecutive {
		p.eject(m)
	}
}

// eject ejects m unless max_ejection_percent forbids it. Either way its
// error run starts again from zero.
func (p *Pool) eject(m *member) {
	p.mu.Lock()
	defer p.mu.Unlock()
	m.consecErrors.Store(0)
	if m.ejected || p.closed {
		return
	}
	now := time.Now()
	if allowed := len(p.members) * p.outlier.percent / 100; p.ejected >= allowed {
		if !m.refusedLog.IsZero() && now.Sub(m.refusedLog) < p.outlier.ejectTime {
			return // said so already
		}
		m.refusedLog = now
		p.log.Warn("backend not ejected: max_ejection_percent reached", "backend", m.addr,
			"errors", p.outlier.consecutive, "ejected", p.ejected, "max_ejection_percent", p.outlier.percent)
		return
	}
	if !m.lastEjectEnd.IsZero() && now.Sub(m.lastEjectEnd) >= p.outlier.maxEject {
		m.backoff = 0 // it behaved for max_ejection_time: forgive earlier ejections
	}
	d := p.outlier.maxEject
	if limit := int(p.outlier.maxEject / p.outlier.ejectTime); m.backoff < limit {
		d = min(p.outlier.ejectTime*time.Duration(m.backoff+1), p.outlier.maxEject)
	}
	m.backoff = min(m.backoff+1, 1<<20)
	p.change(m, now, func() {
		m.ejected, m.until = true, now.Add(d)
		m.ejections++
	})
	p.ejected++
	p.wake()
	p.log.Warn("backend ejected", "backend", m.addr, "errors", p.outlier.consecutive,
		"for", d, "ejections", m.ejections)
}

// endEjection lets m back in; p.mu is held.
func (p *Pool) endEjection(m *member, now time.Time) {
	p.change(m, now, func() {
		m.ejected, m.until = false, time.Time{}
		m.lastEjectEnd = now
	})
	m.consecErrors.Store(0)
	p.ejected--
	p.log.Info("backend ejection ended", "backend", m.addr, "state", m.state.String())
}
