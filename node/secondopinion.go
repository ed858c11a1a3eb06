package node

import (
	"net/netip"
	"time"
)

// secondOpinionEvery is how often the VRRP states are compared with the
// cluster's membership.
const secondOpinionEvery = 200 * time.Millisecond

// watchSecondOpinion compares VRRP with memberlist: when an instance takes
// over because it stopped hearing its master, but the cluster still sees
// that master's node alive, VRRP adverts are being lost while the node is
// up — a firewall dropping IP protocol 112, or a split brain — and the
// operator must hear about it loudly. It runs until stop is closed.
func (n *Node) watchSecondOpinion(stop <-chan struct{}) {
	type seen struct {
		state  string
		master string
	}
	last := map[string]seen{}
	t := time.NewTicker(secondOpinionEvery)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		ins, err := n.vr.instances()
		if err != nil {
			continue
		}
		for _, in := range ins {
			prev := last[in.Name]
			if in.State == "MASTER" && prev.state == "BACKUP" && prev.master != "" {
				if ip, err := netip.ParseAddr(prev.master); err == nil {
					if name, alive := n.sync.AliveAt(ip); alive {
						n.log.Error("VRRP lost the master's adverts and took over, but the cluster sees the master alive: "+
							"VRRP (IP protocol 112) is blocked between the nodes, or this is a split brain",
							"instance", in.Name, "old_master", prev.master, "member", name)
					}
				}
			}
			cur := seen{state: in.State, master: prev.master}
			if in.State == "BACKUP" && in.Master != "" {
				cur.master = in.Master
			}
			last[in.Name] = cur
		}
	}
}
