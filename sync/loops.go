package lbsync

import (
	"slices"
	"time"
)

// sweepEvery is the janitor's tick; each tick sweeps 1/sweepParts of every
// table's stripes, so an expired entry is gone within about 4 s.
const (
	sweepEvery = 250 * time.Millisecond
	sweepParts = 16
)

// joinLoop joins the configured peers, and again whenever this node is
// alone: the first node of a cluster starts before its peers, and a node
// whose peers all restarted must find them again. It also rejoins members
// it holds for dead, as serf's reconnect does: after a partition heals,
// two sides that each kept several members would otherwise never merge,
// since memberlist stops probing a dead node.
func (c *Cluster) joinLoop() {
	defer c.wg.Done()
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-c.stop:
			return
		case <-t.C:
		}
		if targets := c.joinTargets(); len(targets) > 0 {
			alone := c.ml.NumMembers() <= 1
			switch n, err := c.ml.Join(targets); {
			case err != nil && alone:
				c.log.Warn("joining the cluster", "peers", targets, "err", err)
			case err != nil:
				c.log.Debug("rejoining members held for dead", "addrs", targets, "err", err)
			case alone && c.ml.NumMembers() > 1:
				c.log.Info("joined the cluster", "contacted", n)
			case !alone:
				c.log.Info("rejoined members held for dead", "addrs", targets, "contacted", n)
			}
		}
		t.Reset(c.cfg.JoinRetry)
	}
}

// joinTargets returns the addresses to join: the configured peers when this
// node is alone, and the members it holds for dead (not those that left).
func (c *Cluster) joinTargets() []string {
	var out []string
	if c.ml.NumMembers() <= 1 {
		out = append(out, c.cfg.Peers...)
	}
	c.members.mu.Lock()
	defer c.members.mu.Unlock()
	for _, m := range c.members.m {
		if !m.Self && m.State == MemberDead && !slices.Contains(out, m.Addr.String()) {
			out = append(out, m.Addr.String())
		}
	}
	return out
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
