package balance

import "time"

const (
	// latencyShift sets the EWMA weight of a new sample to 1/4.
	latencyShift = 2
	// latencyHalfLife is how fast an idle backend's EWMA decays toward
	// zero. A backend 50× slower than its peers is tried again after about
	// six half-lives without samples (30 s); its next sample restores the
	// EWMA, so it gets a trickle of traffic rather than none.
	latencyHalfLife = 5 * time.Second
)

// ObserveLatency feeds one response (L7) or connect (L4) time into the
// backend's EWMA, used by least_time. Negative durations count as zero.
func (b *Backend) ObserveLatency(d time.Duration) {
	now := time.Now().UnixNano()
	obs := max(int64(d), 0)
	for {
		old := b.ewma.Load()
		var next int64
		if last := b.lastObs.Load(); last == 0 {
			next = obs // first sample
		} else {
			base := decay(old, now-last)
			next = base + (obs-base)>>latencyShift
		}
		if b.ewma.CompareAndSwap(old, next) {
			break
		}
	}
	b.lastObs.Store(now)
}

// Latency returns the EWMA latency as least_time sees it now, including the
// decay since the last sample; 0 when nothing was observed.
func (b *Backend) Latency() time.Duration {
	return time.Duration(b.latencyAt(time.Now().UnixNano()))
}

func (b *Backend) latencyAt(now int64) float64 {
	last := b.lastObs.Load()
	return float64(decay(b.ewma.Load(), now-last))
}

// decay halves v once per latencyHalfLife in dt, interpolating linearly
// within a half-life: cheap enough to run for every backend on every pick
// (no division within the first half-life). Clock steps backwards (dt < 0)
// decay nothing.
func decay(v, dt int64) int64 {
	if dt <= 0 || v <= 0 {
		return v
	}
	const hl = int64(latencyHalfLife)
	if dt >= hl {
		k := dt / hl
		if k >= 63 {
			return 0
		}
		v >>= k
		dt -= k * hl
	}
	return v - int64(float64(v)*float64(dt)*(0.5/float64(hl)))
}
