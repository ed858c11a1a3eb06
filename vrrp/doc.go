// Package vrrp implements the Virtual Router Redundancy Protocol, versions 3 (RFC 5798) and 2 (RFC 3768).
//
// It speaks keepalived's dialect on the wire: VRRPv3 checksums include the
// IPv4 pseudo-header (and, on receipt, the older keepalived unicast form with
// 224.0.0.18 in it, see Advert.LegacyChecksum); VRRPv2 over IPv6 has no
// authentication data; timings follow keepalived where the RFCs leave room.
//
// # Parts
//
//   - Advert, Parse/ParseInto and Advert.Marshal/AppendMarshal convert adverts
//     to and from their wire form. They validate everything the packet can
//     tell and return distinct errors (ErrChecksum, ErrTruncated, …) that a
//     receiver counts. ParseInto and AppendMarshal do not allocate.
//   - Machine is the state machine of one instance: Init, Backup, Master
//     (RFC 5798 §6.4) and Fault. It is pure logic: no sockets, no clock, no
//     goroutines.
//   - Conn is the interface of the socket a later, Linux-only part provides.
//
// # Driving a Machine
//
// One goroutine owns each Machine. It passes every event with the current time
// and carries out the returned Actions in order:
//
//	acts := m.Start(now)
//	for {
//		apply(acts)          // send adverts, add/remove VIPs, notify
//		wait for the first of: a packet, a track or link change, an admin
//		command, or the clock reaching m.NextDeadline()
//		acts = m.HandleAdvert(now, src, &adv) // or SetTrack, SetLink,
//		                                      // Demote, Promote, Tick
//	}
//
// Timers are deadlines the Machine computes from the times it is given, so
// tests step a fake clock and check exact instants, and the owner sleeps
// exactly until NextDeadline. Master_Down_Interval is 3 × Master_Adver_Interval
// + Skew_Time, where Skew_Time = (256 − Priority) × Master_Adver_Interval / 256
// in version 3 (with the interval learnt from the master's adverts) and
// (256 − Priority) / 256 s in version 2 (RFC 3768, keepalived); neither is
// rounded to centiseconds, so a priority-100 backup at 1 s takes over exactly
// 3.609375 s after the last advert. The steady path (Tick, HandleAdvert,
// Advert, AppendMarshal, ParseInto) does not allocate.
//
// Priority: the effective priority is the configured one minus the weights of
// the failing tracks, clamped to 1..254; a failing weight-0 track, or the link
// going down, means Fault, left through Initialize when it clears. The address
// owner (255) always preempts and cannot have weighted tracks.
//
// # Make-before-break demote
//
// ActionBecomeMaster means "add the addresses", but leaving Master does not
// imply removing them: ActionReleaseVIPs is a separate action. Normally it
// follows the state change in the same list. After Demote a master sends one
// advert of priority 0 and enters Backup at once, so that it no longer
// contends, but it keeps the addresses: ActionReleaseVIPs comes with the
// first advert of positive priority from another router (the new master
// speaks, it already holds the addresses since ActionBecomeMaster precedes its
// first advert), or from Tick after Master_Down_Interval if no one takes over.
// So there is no moment when no node holds the addresses; for about one
// packet's flight both do, and the new master's gratuitous ARP has already
// pointed the neighbours at it. Fault and Shutdown release at once. A graceful stop can use the same path: Demote, wait for
// ActionReleaseVIPs (Status.HoldsVIPs turns false), then Shutdown.
package vrrp
