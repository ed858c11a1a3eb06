package lbsync

import (
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/memberlist"
)

// MemberState is a member's state as memberlist (SWIM) sees it.
type MemberState string

const (
	MemberAlive MemberState = "alive" // answering probes (also while merely suspected)
	MemberDead  MemberState = "dead"  // stopped answering: failed or cut off
	MemberLeft  MemberState = "left"  // left on purpose (closed cleanly)
)

// Member is one node of the cluster, this one included.
type Member struct {
	Name  string
	Addr  netip.AddrPort // gossip address
	State MemberState
	Since time.Time // when this node saw it enter State
	Self  bool
}

// memberSet is the membership as memberlist's events told it. memberlist's
// own list cannot be read safely while it changes, and drops dead nodes.
type memberSet struct {
	mu sync.Mutex // guards m
	m  map[string]Member
}

func (s *memberSet) init() { s.m = map[string]Member{} }

// events receives memberlist's membership events, which it delivers with
// its own lock held: the handlers only record and signal.
type events struct{ c *Cluster }

func (e events) NotifyJoin(n *memberlist.Node)   { e.c.memberEvent(n, MemberAlive) }
func (e events) NotifyUpdate(n *memberlist.Node) { e.c.memberEvent(n, MemberAlive) }
func (e events) NotifyLeave(n *memberlist.Node) {
	// memberlist v0.7 does not fill in Node.State; a node that shuts down
	// cleanly says so in its metadata before it leaves.
	st := MemberDead
	if len(n.Meta) >= 2 && n.Meta[1]&metaLeaving != 0 {
		st = MemberLeft
	}
	e.c.memberEvent(n, st)
}

// Node metadata: [sync protocol version, flags].
const metaLeaving = 1 << 0 // the node is shutting down

// delegate gives memberlist this node's metadata. Tables do not ride on
// gossip, so the other hooks are empty.
type delegate struct{ c *Cluster }

func (d delegate) NodeMeta(int) []byte {
	m := []byte{protoVersion, 0}
	if d.c.leaving.Load() {
		m[1] |= metaLeaving
	}
	return m
}

func (delegate) NotifyMsg([]byte)                    {}
func (delegate) GetBroadcasts(int, int) [][]byte     { return nil }
func (delegate) LocalState(bool) []byte              { return nil }
func (delegate) MergeRemoteState(buf []byte, _ bool) {}

func (c *Cluster) memberEvent(n *memberlist.Node, st MemberState) {
	ip, _ := netip.AddrFromSlice(n.Addr)
	m := Member{Name: n.Name, Addr: netip.AddrPortFrom(ip.Unmap(), n.Port), State: st, Since: time.Now(), Self: n.Name == c.self}
	c.members.mu.Lock()
	old, had := c.members.m[m.Name]
	if had && old.State == st {
		m.Since = old.Since
	}
	c.members.m[m.Name] = m
	c.members.mu.Unlock()
	switch {
	case m.Self:
	case had && old.State == st && old.Addr == m.Addr:
	case st == MemberAlive:
		c.log.Info("member alive", "member", m.Name, "addr", m.Addr.String())
	default:
		c.log.Warn("member "+string(st), "member", m.Name, "addr", m.Addr.String())
	}
	select {
	case c.memberCh <- struct{}{}:
	default:
	}
}

// Members returns every member seen since start, this node included, sorted
// by name; dead and left ones stay listed until they come back.
func (c *Cluster) Members() []Member {
	c.members.mu.Lock()
	ms := make([]Member, 0, len(c.members.m))
	for _, m := range c.members.m {
		ms = append(ms, m)
	}
	c.members.mu.Unlock()
	slices.SortFunc(ms, func(a, b Member) int { return strings.Compare(a.Name, b.Name) })
	return ms
}

// Alive reports whether memberlist considers the node called name alive.
// It is VRRP's second opinion: a backup that hears no advert from a master
// that memberlist still reaches is looking at a split brain (or a lost VRRP
// path) and should say so loudly.
func (c *Cluster) Alive(name string) bool {
	c.members.mu.Lock()
	defer c.members.mu.Unlock()
	return c.members.m[name].State == MemberAlive
}

// AliveAt is Alive for the member whose gossip address is ip, for callers
// that know a peer by address (a VRRP advert's source, when it shares the
// gossip address). It reports the member's name too.
func (c *Cluster) AliveAt(ip netip.Addr) (name string, alive bool) {
	ip = ip.Unmap()
	c.members.mu.Lock()
	defer c.members.mu.Unlock()
	for _, m := range c.members.m {
		if m.Addr.Addr() == ip && !m.Self {
			if m.State == MemberAlive {
				return m.Name, true
			}
			name = m.Name
		}
	}
	return name, false
}

// alivePeers returns the address of every other alive member, by name.
func (c *Cluster) alivePeers() map[string]string {
	c.members.mu.Lock()
	defer c.members.mu.Unlock()
	want := map[string]string{}
	for _, m := range c.members.m {
		if !m.Self && m.State == MemberAlive {
			want[m.Name] = m.Addr.String()
		}
	}
	return want
}
