package lbsync

import "time"

// sweepEvery is the janitor's tick; each tick sweeps 1/sweepParts of every
// table's stripes, so an expired entry is gone within about 4 s.
const (
	sweepEvery = 250 * time.Millisecond
	sweepParts = 16
)

// joinLoop joins the configured peers, and again whenever this node is
// alone: the first node of a cluster starts before its peers, and a node
// whose peers all restarted must find them again.
func (c *Cluster) joinLoop() {
	defer c.wg.Done()
	if len(c.cfg.Peers) == 0 {
		return
	}
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-c.stop:
			return
		case <-t.C:
		}
		if c.ml.NumMembers() <= 1 {
			switch n, err := c.ml.Join(c.cfg.Peers); {
			case err != nil:
				c.log.Warn("joining the cluster", "peers", c.cfg.Peers, "err", err)
			case c.ml.NumMembers() > 1:
				c.log.Info("joined the cluster", "contacted", n)
			default:
				c.log.Debug("still alone after joining", "peers", c.cfg.Peers)
			}
		}
		t.Reset(c.cfg.JoinRetry)
	}
}

// janitor sweeps expired entries and writes periodic snapshots.
func (c *Cluster) janitor() {
	defer c.wg.Done()
	sweep := time.NewTicker(sweepEvery)
	defer sweep.Stop()
	var snap <-chan time.Time
	if c.cfg.StateDir != "" && c.cfg.SnapshotInterval > 0 {
		t := time.NewTicker(c.cfg.SnapshotInterval)
		defer t.Stop()
		snap = t.C
	}
	part := 0
	for {
		select {
		case <-c.stop:
			return
		case <-sweep.C:
			now := c.now()
			for _, t := range c.Tables() {
				n := max(len(t.shards)/sweepParts, 1)
				t.sweep(part*n, n, now)
			}
			part = (part + 1) % sweepParts
		case <-snap:
			c.snapshot()
		}
	}
}

// clockTick is the resolution of the tables' clock.
const clockTick = time.Millisecond

// clockLoop keeps a coarse clock for the tables, so that Lookup and Store
// read an atomic instead of calling time.Now (which costs more than the
// rest of a Lookup on some virtual machines). Expiry and versions need no
// finer resolution.
func (c *Cluster) clockLoop() {
	defer c.wg.Done()
	t := time.NewTicker(clockTick)
	defer t.Stop()
	for {
		select {
		case <-c.stop:
			return
		case <-t.C:
			c.clock.Store(time.Now().UnixNano())
		}
	}
}
