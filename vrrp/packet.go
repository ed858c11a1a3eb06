package vrrp

import (
	"encoding/binary"
	"errors"
	"net/netip"
	"slices"
	"time"
)

// Wire constants of RFC 5798 and RFC 3768.
const (
	// ProtocolNumber is the IP protocol number of VRRP (IANA).
	ProtocolNumber = 112
	// TTL is the IPv4 TTL / IPv6 hop limit adverts are sent with; a
	// receiver drops any other value (RFC 5798 §7.1).
	TTL = 255
	// TypeAdvert is the only VRRP packet type, ADVERTISEMENT.
	TypeAdvert uint8 = 1
	// PriorityOwner is the priority of the router that owns the virtual
	// addresses; PriorityStop in an advert means the master is leaving.
	PriorityOwner uint8 = 255
	PriorityStop  uint8 = 0

	// MaxIntervalV3 is the largest VRRPv3 advert interval: 4095
	// centiseconds in a 12-bit field.
	MaxIntervalV3 = 4095 * centisecond
	// MaxIntervalV2 is the largest VRRPv2 advert interval: 255 seconds.
	MaxIntervalV2 = 255 * time.Second

	centisecond = 10 * time.Millisecond
	headerLen   = 8
	authLen     = 8 // VRRPv2 Authentication Data, IPv4 only
)

// VRRPv2 authentication types (RFC 2338 §5.3.6; RFC 3768 keeps only 0).
const (
	AuthNone   uint8 = 0 // no authentication
	AuthSimple uint8 = 1 // simple text password, keepalived "auth_type PASS"
	AuthAH     uint8 = 2 // IP Authentication Header (carried outside VRRP)
)

// Multicast groups adverts are sent to (RFC 5798 §5.1.1.2, §5.1.2.2).
var (
	Group4 = netip.AddrFrom4([4]byte{224, 0, 0, 18})
	Group6 = netip.AddrFrom16([16]byte{0: 0xff, 1: 0x02, 15: 0x12})
)

// Errors returned by Parse and Marshal. They are distinct so that a receiver
// can count each kind (errors.Is); they are returned unwrapped so that a
// rejected packet costs no allocation.
var (
	ErrTruncated  = errors.New("vrrp: packet shorter than its header and address count")
	ErrLength     = errors.New("vrrp: packet longer than its address count")
	ErrVersion    = errors.New("vrrp: version is neither 2 nor 3")
	ErrType       = errors.New("vrrp: packet type is not ADVERTISEMENT (1)")
	ErrAddrCount  = errors.New("vrrp: address count is not 1..255")
	ErrAddrFamily = errors.New("vrrp: source, destination and addresses are not all IPv4 or all IPv6")
	ErrChecksum   = errors.New("vrrp: bad checksum")
	ErrInterval   = errors.New("vrrp: advert interval out of range")
	ErrAuthType   = errors.New("vrrp: unknown VRRPv2 authentication type")
)

// Advert is a VRRP ADVERTISEMENT, version 3 (RFC 5798 §5.1) or version 2
// (RFC 3768 §5.1). Its zero value is not valid: set at least Version, VRID,
// Interval and Addrs.
type Advert struct {
	Version  int   // 3 (RFC 5798) or 2 (RFC 3768)
	Type     uint8 // TypeAdvert; Marshal also writes TypeAdvert for 0
	VRID     uint8
	Priority uint8 // 0: the master stops; 255: address owner
	// Interval is the Max Adver Int: centiseconds on the wire in version 3
	// (10ms..40.95s), whole seconds in version 2 (1s..255s).
	Interval time.Duration
	// Addrs are the virtual addresses, all of the family of the packet's
	// IP source: 1 to 255 of them.
	Addrs []netip.Addr
	// AuthType and AuthData are version 2 only. AuthData travels only
	// over IPv4 (keepalived's VRRPv2 over IPv6 has no such field).
	AuthType uint8
	AuthData [8]byte
	// LegacyChecksum reports (Parse) or asks for (Marshal) the checksum
	// form of older keepalived releases sending VRRPv3 over IPv4 unicast:
	// the pseudo-header names 224.0.0.18 as destination instead of the
	// unicast peer. It is ignored for IPv6 and for version 2.
	LegacyChecksum bool
}

// Marshal returns the wire form of a as sent from src to dst (the IP source
// and destination, which the version 3 checksum covers).
func (a *Advert) Marshal(src, dst netip.Addr) ([]byte, error) {
	src = src.Unmap()
	return a.AppendMarshal(make([]byte, 0, a.wireLen(src.Is4())), src, dst)
}

// AppendMarshal appends the wire form of a to b and returns the extended
// slice. It does not allocate when b has room for the message: an advert
// loop can reuse one buffer. On error b is returned unchanged.
func (a *Advert) AppendMarshal(b []byte, src, dst netip.Addr) ([]byte, error) {
	src, dst = src.Unmap(), dst.Unmap()
	is4, err := families(src, dst)
	if err != nil {
		return b, err
	}
	if err := a.validate(is4); err != nil {
		return b, err
	}
	n := a.wireLen(is4)
	start := len(b)
	b = slices.Grow(b, n)[:start+n]
	m := b[start:]
	clear(m)
	m[0] = byte(a.Version<<4) | TypeAdvert
	m[1] = a.VRID
	m[2] = a.Priority
	m[3] = byte(len(a.Addrs))
	if a.Version == 3 {
		binary.BigEndian.PutUint16(m[4:], uint16(a.Interval/centisecond))
	} else {
		m[4] = a.AuthType
		m[5] = byte(a.Interval / time.Second)
	}
	off := headerLen
	for _, ip := range a.Addrs {
		if is4 {
			v := ip.As4()
			off += copy(m[off:], v[:])
		} else {
			v := ip.As16()
			off += copy(m[off:], v[:])
		}
	}
	if a.Version == 2 && is4 {
		copy(m[off:], a.AuthData[:])
	}
	var s uint32
	if a.Version == 3 || !is4 {
		pdst := dst
		if a.LegacyChecksum && a.Version == 3 && is4 {
			pdst = Group4
		}
		s = pseudoSum(src, pdst, n)
	}
	binary.BigEndian.PutUint16(m[6:], ^fold(sum16(s, m)))
	return b, nil
}

// validate checks the fields Marshal encodes.
func (a *Advert) validate(is4 bool) error {
	if a.Type != 0 && a.Type != TypeAdvert {
		return ErrType
	}
	switch a.Version {
	case 3:
		if a.Interval < centisecond || a.Interval > MaxIntervalV3 || a.Interval%centisecond != 0 {
			return ErrInterval
		}
	case 2:
		if a.Interval < time.Second || a.Interval > MaxIntervalV2 || a.Interval%time.Second != 0 {
			return ErrInterval
		}
		if a.AuthType > AuthAH {
			return ErrAuthType
		}
	default:
		return ErrVersion
	}
	if len(a.Addrs) == 0 || len(a.Addrs) > 255 {
		return ErrAddrCount
	}
	for _, ip := range a.Addrs {
		if is4 && !ip.Is4() || !is4 && !ip.Is6() {
			return ErrAddrFamily
		}
	}
	return nil
}

// wireLen is the length of a's wire form over IPv4 (is4) or IPv6.
func (a *Advert) wireLen(is4 bool) int {
	return msgLen(a.Version, len(a.Addrs), is4)
}

// msgLen is the length of a VRRP message of version v with count addresses.
func msgLen(v, count int, is4 bool) int {
	if !is4 {
		return headerLen + 16*count
	}
	n := headerLen + 4*count
	if v == 2 {
		n += authLen
	}
	return n
}

// families reports whether src and dst are IPv4; it fails unless both are
// valid addresses of the same family.
func families(src, dst netip.Addr) (is4 bool, err error) {
	if !src.IsValid() || !dst.IsValid() || src.Is4() != dst.Is4() {
		return false, ErrAddrFamily
	}
	return src.Is4(), nil
}

// Parse decodes the VRRP message b (the IP payload) received from src to dst.
// See ParseInto.
func Parse(b []byte, src, dst netip.Addr) (*Advert, error) {
	a := new(Advert)
	if err := ParseInto(a, b, src, dst); err != nil {
		return nil, err
	}
	return a, nil
}

// ParseInto decodes the VRRP message b (the IP payload, IP header already
// stripped) received from src to dst into a, reusing the capacity of a.Addrs:
// a receive loop that keeps one Advert does not allocate.
//
// It checks, in this order and with these errors: the length of the fixed
// header (ErrTruncated), the version (ErrVersion), the type (ErrType), that
// src and dst are of one family (ErrAddrFamily), the address count
// (ErrAddrCount), the length against the count (ErrTruncated, ErrLength), the
// checksum (ErrChecksum), the interval (ErrInterval) and the VRRPv2
// authentication type (ErrAuthType).
//
// The checksum of version 3 covers the IPv4 or IPv6 pseudo-header
// (RFC 5798 §5.2.8). For IPv4 the real dst is tried first, then 224.0.0.18,
// the form older keepalived releases send to unicast peers; a packet that
// needs the second try has LegacyChecksum set. Version 2 over IPv4 sums the
// message alone (RFC 3768 §5.3.8); keepalived's version 2 over IPv6 has no
// authentication data and the kernel's pseudo-header checksum.
//
// The IP-level checks (TTL 255, protocol 112) and the checks against the local
// configuration (VRID, interval of version 2, authentication, address list)
// are the receiver's and the Machine's. On error a is left unchanged.
func ParseInto(a *Advert, b []byte, src, dst netip.Addr) error {
	src, dst = src.Unmap(), dst.Unmap()
	if len(b) < headerLen {
		return ErrTruncated
	}
	v := int(b[0] >> 4)
	if v != 2 && v != 3 {
		return ErrVersion
	}
	if b[0]&0x0f != TypeAdvert {
		return ErrType
	}
	is4, err := families(src, dst)
	if err != nil {
		return err
	}
	count := int(b[3])
	if count == 0 {
		return ErrAddrCount
	}
	n := msgLen(v, count, is4)
	if len(b) < n {
		return ErrTruncated
	}
	if len(b) > n {
		return ErrLength
	}
	legacy, err := verifyChecksum(b, v, is4, src, dst)
	if err != nil {
		return err
	}
	var interval time.Duration
	if v == 3 {
		interval = time.Duration(binary.BigEndian.Uint16(b[4:])&0x0fff) * centisecond
	} else {
		interval = time.Duration(b[5]) * time.Second
		if b[4] > AuthAH {
			return ErrAuthType
		}
	}
	if interval == 0 {
		return ErrInterval
	}
	a.Version = v
	a.Type = TypeAdvert
	a.VRID = b[1]
	a.Priority = b[2]
	a.Interval = interval
	a.AuthType, a.AuthData = 0, [8]byte{}
	if v == 2 {
		a.AuthType = b[4]
	}
	a.LegacyChecksum = legacy
	a.Addrs = a.Addrs[:0]
	off := headerLen
	for range count {
		if is4 {
			a.Addrs = append(a.Addrs, netip.AddrFrom4([4]byte(b[off:off+4])))
			off += 4
		} else {
			a.Addrs = append(a.Addrs, netip.AddrFrom16([16]byte(b[off:off+16])))
			off += 16
		}
	}
	if v == 2 && is4 {
		a.AuthData = [8]byte(b[off : off+authLen])
	}
	return nil
}

// verifyChecksum checks the checksum of the whole message b; legacy reports
// that it verified only with 224.0.0.18 as pseudo-header destination.
func verifyChecksum(b []byte, v int, is4 bool, src, dst netip.Addr) (legacy bool, err error) {
	if v == 2 && is4 {
		if fold(sum16(0, b)) != 0xffff {
			return false, ErrChecksum
		}
		return false, nil
	}
	msg := sum16(0, b)
	if fold(msg+pseudoSum(src, dst, len(b))) == 0xffff {
		return false, nil
	}
	if v == 3 && is4 && dst != Group4 && fold(msg+pseudoSum(src, Group4, len(b))) == 0xffff {
		return true, nil
	}
	return false, ErrChecksum
}
