package health

import "time"

// A waker is what schedule sleeps on: it wakes up at the time last armed
// or when kicked, whichever comes first. arm and kick are safe for
// concurrent use, also after close (then they do nothing).
type waker interface {
	arm(at time.Time) // wake up at at; zero: only when kicked
	kick()            // wake up now
	wait()            // sleep until woken; may return early
	close()
}

// timerWaker is a waker on a Go timer and a channel: the one for pools
// whose check is a custom Prober (and for tests, whose fake clock it
// follows), and the fallback when the system has no timerfd.
type timerWaker struct {
	t     *time.Timer
	kickC chan struct{}
}

func newTimerWaker() *timerWaker {
	w := &timerWaker{kickC: make(chan struct{}, 1)}
	w.t = time.NewTimer(time.Hour)
	w.t.Stop()
	return w
}

func (w *timerWaker) arm(at time.Time) {
	if at.IsZero() {
		w.t.Stop()
		return
	}
	w.t.Reset(time.Until(at))
}

func (w *timerWaker) kick() {
	select {
	case w.kickC <- struct{}{}:
	default:
	}
}

func (w *timerWaker) wait() {
	select {
	case <-w.kickC:
	case <-w.t.C:
	}
}

func (w *timerWaker) close() { w.t.Stop() }
