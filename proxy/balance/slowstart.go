package balance

import "time"

// SlowStartPermille returns the weight factor for a backend that returned to
// service elapsed ago, for a pool with slow_start = window: it ramps from
// 100 ‰ (10 %) to 1000 ‰ in steps of 50 ‰, so that a ramp rebuilds the
// tables at most 19 times. A zero or negative window means no slow start.
// HAProxy's slowstart ramps the same way, from a small weight to the full one.
func SlowStartPermille(elapsed, window time.Duration) int {
	if window <= 0 || elapsed >= window {
		return 1000
	}
	if elapsed < 0 {
		elapsed = 0
	}
	p := 100 + int(900*float64(elapsed)/float64(window))
	return min(p/50*50, 1000)
}
