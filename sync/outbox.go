package lbsync

import "sync"

// maxPending bounds the writes waiting for the flusher. Past it, writes are
// not queued and every feed is reset, so peers get a full-state transfer
// instead of the lost deltas.
const maxPending = 1 << 20

// delta is one local write waiting to be sent.
type delta struct {
	t          *Table
	key, value string
	version    uint64
	expires    int64
	tomb       bool
}

// outbox collects local writes for the flusher. Writers hold its lock only
// to append.
type outbox struct {
	mu       sync.Mutex // guards pending and overflow
	pending  []delta
	overflow bool
	wake     chan struct{} // capacity 1
}

// publish queues a local write for every member's feed, connected or
// reconnecting. With no feed nothing is queued: a member that joins later
// receives the whole table first (its feed is registered before it reads
// the table, and the write reached the table before this check).
func (c *Cluster) publish(d *delta) {
	if len(*c.feeds.Load()) == 0 {
		return
	}
	o := &c.out
	o.mu.Lock()
	if len(o.pending) >= maxPending {
		o.overflow = true
		o.mu.Unlock()
		return
	}
	o.pending = append(o.pending, *d)
	first := len(o.pending) == 1
	o.mu.Unlock()
	if first {
		select {
		case o.wake <- struct{}{}:
		default:
		}
	}
}

// flushLoop sends queued writes as soon as it is free: a batch holds the
// writes made while the previous one was encoded and handed to the feeds,
// so batching adds no timer delay (well under a millisecond on loopback).
// Each batch is encoded once and shared by every feed.
func (c *Cluster) flushLoop() {
	defer c.wg.Done()
	enc := newRecordEncoder(c.names)
	var batch []delta
	for {
		select {
		case <-c.stop:
			return
		case <-c.out.wake:
		}
		spare := batch[:0]
		c.out.mu.Lock()
		batch, c.out.pending = c.out.pending, spare
		overflow := c.out.overflow
		c.out.overflow = false
		c.out.mu.Unlock()
		if overflow {
			c.log.Warn("write queue overflowed; peers will resync")
			c.resetFeeds()
		}
		if len(batch) == 0 {
			continue
		}
		now, at := c.now(), preciseNow()
		var frames []frame
		cut := func() { frames = append(frames, frame{records: enc.len(), b: enc.finish(nil), at: at}) }
		for i := range batch {
			d := &batch[i]
			enc.add(d.t, 0, d.tomb, d.version, ttlMillis(d.expires, now), d.key, d.value)
			if enc.full() {
				cut()
			}
		}
		if enc.len() > 0 {
			cut()
		}
		c.stats.deltasSent.Add(uint64(len(batch)))
		clear(batch) // drop the references to keys and tables
		for _, f := range *c.feeds.Load() {
			f.enqueue(frames)
		}
	}
}
