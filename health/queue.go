package health

import "time"

// probeQueue is a binary min-heap of the backends waiting for their next
// probe, ordered by member.next. A backend is in it only between two
// probes, never while one runs: that is what keeps its checks from
// overlapping. Pool.qmu guards it.
type probeQueue []*member

// push adds m, due at m.next.
func (q *probeQueue) push(m *member) {
	*q = append(*q, m)
	q.up(len(*q) - 1)
}

// popDue appends to due every member whose probe is due at now, removing
// them, and returns due and the time the first remaining one is due (zero
// when none remains).
func (q *probeQueue) popDue(now time.Time, due []*member) ([]*member, time.Time) {
	h := *q
	for len(h) > 0 && !h[0].next.After(now) {
		due = append(due, h[0])
		last := len(h) - 1
		h[0] = h[last]
		h[last] = nil
		h = h[:last]
		*q = h
		q.down(0)
	}
	if len(h) == 0 {
		return due, time.Time{}
	}
	return due, h[0].next
}

func (q probeQueue) up(i int) {
	for i > 0 {
		parent := (i - 1) / 2
		if !q[i].next.Before(q[parent].next) {
			return
		}
		q[i], q[parent] = q[parent], q[i]
		i = parent
	}
}

func (q probeQueue) down(i int) {
	for {
		least := i
		if l := 2*i + 1; l < len(q) && q[l].next.Before(q[least].next) {
			least = l
		}
		if r := 2*i + 2; r < len(q) && q[r].next.Before(q[least].next) {
			least = r
		}
		if least == i {
			return
		}
		q[i], q[least] = q[least], q[i]
		i = least
	}
}
