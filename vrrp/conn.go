package vrrp

import "net/netip"

// Conn carries VRRP messages on one interface for one address family. The
// Linux implementation is a raw IP socket of protocol 112 that joins
// 224.0.0.18 or ff02::12 (or talks to unicast peers); tests use an in-memory
// fake. All instances on the interface share it: the owner demultiplexes by
// the VRID that Parse returns.
//
// Contract for implementations:
//   - ReadFrom returns one VRRP message, the IP header and any IPsec AH
//     removed, and the packet's IP source and destination. It drops, and
//     counts, packets whose IPv4 TTL or IPv6 hop limit is not 255
//     (RFC 5798 §7.1). It may return our own multicast adverts: the
//     Machine recognises and ignores them.
//   - WriteTo sends one message (built by Advert.AppendMarshal with the
//     same src and dst) from src, the instance's Config.LocalAddr, to dst,
//     the group or a unicast peer, with TTL 255 and DSCP CS6 (keepalived's
//     TOS 0xc0).
//   - Close unblocks a pending ReadFrom, which then returns an error.
//
// ReadFrom and WriteTo may be called from different goroutines.
type Conn interface {
	ReadFrom(b []byte) (n int, src, dst netip.Addr, err error)
	WriteTo(b []byte, src, dst netip.Addr) error
	Close() error
}
