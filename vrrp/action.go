package vrrp

import (
	"net/netip"
	"strconv"
	"time"
)

// State is the state of a virtual router instance: RFC 5798 §6.4
// Initialize, Backup and Master, plus keepalived's Fault.
type State uint8

// The states of a Machine.
const (
	StateInit   State = iota // not started, or shut down (RFC 5798 §6.4.1)
	StateBackup              // monitoring the master (§6.4.2)
	StateMaster              // holding the addresses, advertising (§6.4.3)
	StateFault               // a weight-0 track or the link failed
)

// String returns the state in keepalived's spelling, as notify scripts and
// lbctl show it.
func (s State) String() string {
	switch s {
	case StateInit:
		return "INIT"
	case StateBackup:
		return "BACKUP"
	case StateMaster:
		return "MASTER"
	case StateFault:
		return "FAULT"
	}
	return "State(" + strconv.Itoa(int(s)) + ")"
}

// ActionKind says what an Action asks of the Machine's owner.
type ActionKind uint8

// The actions a Machine emits. State actions announce a transition that has
// happened; the owner logs it, runs notify and tells the proxy and admin.
const (
	// ActionSendAdvert: send an advert with Action.Priority now, to the
	// group or to every unicast peer (build it with Machine.Advert).
	ActionSendAdvert ActionKind = iota + 1
	// ActionBecomeMaster: the instance is master. Add the virtual
	// addresses (`ip addr add VIP dev IF`) and send gratuitous ARP /
	// unsolicited NA, before the advert that follows in the same list.
	ActionBecomeMaster
	// ActionBecomeBackup, ActionBecomeFault, ActionBecomeInit: the
	// instance entered that state. They never remove addresses by
	// themselves: ActionReleaseVIPs does.
	ActionBecomeBackup
	ActionBecomeFault
	ActionBecomeInit
	// ActionReleaseVIPs: remove the virtual addresses
	// (`ip addr del VIP dev IF`). Emitted once for each
	// ActionBecomeMaster, at once when the instance leaves Master,
	// except after Demote (make-before-break, see the package doc).
	ActionReleaseVIPs
)

// String names the kind as tests and logs print it.
func (k ActionKind) String() string {
	switch k {
	case ActionSendAdvert:
		return "send"
	case ActionBecomeMaster:
		return "master"
	case ActionBecomeBackup:
		return "backup"
	case ActionBecomeFault:
		return "fault"
	case ActionBecomeInit:
		return "init"
	case ActionReleaseVIPs:
		return "release"
	}
	return "ActionKind(" + strconv.Itoa(int(k)) + ")"
}

// Action is one thing the owner of a Machine must do, in list order.
type Action struct {
	Kind     ActionKind
	Priority uint8 // ActionSendAdvert: the priority to advertise
}

// String returns "send 100" for adverts and the kind's name otherwise.
func (a Action) String() string {
	if a.Kind == ActionSendAdvert {
		return "send " + strconv.Itoa(int(a.Priority))
	}
	return a.Kind.String()
}

// Counters are what a Machine has seen since NewMachine. Packet errors found
// by Parse (checksum, length, version on the wire) are the receiver's to count.
type Counters struct {
	AdvertsSent          uint64 // ActionSendAdvert emitted
	AdvertsReceived      uint64 // adverts handed to HandleAdvert, our own excluded
	PriorityZeroSent     uint64
	PriorityZeroReceived uint64
	Transitions          uint64 // every state change
	BecomeMaster         uint64 // transitions into Master
	ReleaseMaster        uint64 // transitions out of Master
	LowerPriority        uint64 // lower-priority adverts discarded (backup with preempt) or answered (master)
	OwnAdverts           uint64 // adverts from our own address (multicast loop), ignored
	VRIDErrors           uint64 // advert for another VRID, ignored
	VersionErrors        uint64 // advert of the other VRRP version, ignored
	IntervalErrors       uint64 // VRRPv2 advert interval differs from ours (RFC 3768 §7.1), ignored
	AuthErrors           uint64 // VRRPv2 authentication type or data differs, ignored
	AddrListErrors       uint64 // advert address list differs from ours (ignored in v2 unless from the owner)
}

// Status is a snapshot of a Machine for lbctl status and /status.
type Status struct {
	State          State
	Priority       uint8 // effective: configured, lowered by failing tracks
	Demoted        bool  // by Demote, until Promote
	HoldsVIPs      bool  // between ActionBecomeMaster and ActionReleaseVIPs
	MasterAddr     netip.Addr
	MasterPriority uint8         // of the last advert from MasterAddr
	MasterInterval time.Duration // Master_Adver_Interval
}
