//go:build !linux

package health

// newWaker returns a timerWaker: outside Linux there is no timerfd.
func (p *Pool) newWaker() waker { return newTimerWaker() }
