package vrrp

import (
	"encoding/binary"
	"net/netip"
)

// sum16 adds b to the running ones'-complement sum s as big-endian 16-bit
// words (RFC 1071); an odd trailing byte is padded with zero.
func sum16(s uint32, b []byte) uint32 {
	for len(b) >= 2 {
		s += uint32(binary.BigEndian.Uint16(b))
		b = b[2:]
	}
	if len(b) == 1 {
		s += uint32(b[0]) << 8
	}
	return s
}

// fold reduces a 32-bit running sum to 16 bits with end-around carry.
func fold(s uint32) uint16 {
	for s>>16 != 0 {
		s = s&0xffff + s>>16
	}
	return uint16(s)
}

// sumAddr adds the bytes of an IPv4 or IPv6 address to s.
func sumAddr(s uint32, a netip.Addr) uint32 {
	if a.Is4() {
		b := a.As4()
		return sum16(s, b[:])
	}
	b := a.As16()
	return sum16(s, b[:])
}

// pseudoSum is the sum of the IPv4 pseudo-header (RFC 768 layout, as
// RFC 5798 §5.2.8 asks) or of the IPv6 pseudo-header (RFC 8200 §8.1) for a
// VRRP message of length n. src and dst must be of the same family.
func pseudoSum(src, dst netip.Addr, n int) uint32 {
	s := sumAddr(sumAddr(0, src), dst)
	// The length is 16 bits in the IPv4 pseudo-header and 32 bits in the
	// IPv6 one; a VRRP message is far below 64 KiB, so both add n. The
	// zero byte(s) and the protocol byte add ProtocolNumber.
	return s + uint32(n) + ProtocolNumber
}
