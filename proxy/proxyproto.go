package proxy

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"strconv"
)

// AppendProxyHeader appends the PROXY protocol header (HAProxy's
// proxy-protocol.txt, versions "v1" and "v2") that tells the backend the
// client's address: src is the client, dst the frontend address it
// connected to. TCP and HTTP frontends send the same header.
func AppendProxyHeader(b []byte, version string, src, dst netip.AddrPort) ([]byte, error) {
	src = netip.AddrPortFrom(src.Addr().Unmap(), src.Port())
	dst = netip.AddrPortFrom(dst.Addr().Unmap(), dst.Port())
	if !src.IsValid() || !dst.IsValid() || src.Addr().Is4() != dst.Addr().Is4() {
		// Mixed families (an IPv6 client on a dual-stack listener to an IPv4
		// VIP), or an address unknown, cannot be expressed: say UNKNOWN, as
		// the spec allows.
		switch version {
		case "v1":
			return append(b, "PROXY UNKNOWN\r\n"...), nil
		case "v2":
			return append(b, proxyV2Sig+"\x20\x00\x00\x00"...), nil
		}
	}
	switch version {
	case "v1":
		fam := "TCP4"
		if src.Addr().Is6() {
			fam = "TCP6"
		}
		b = append(b, "PROXY "+fam+" "...)
		b = src.Addr().AppendTo(b)
		b = append(b, ' ')
		b = dst.Addr().AppendTo(b)
		b = append(b, ' ')
		b = strconv.AppendUint(b, uint64(src.Port()), 10)
		b = append(b, ' ')
		b = strconv.AppendUint(b, uint64(dst.Port()), 10)
		return append(b, "\r\n"...), nil
	case "v2":
		b = append(b, proxyV2Sig...)
		b = append(b, 0x21) // version 2, command PROXY
		if src.Addr().Is4() {
			b = append(b, 0x11, 0, 12) // AF_INET, STREAM; 12 address bytes
		} else {
			b = append(b, 0x21, 0, 36) // AF_INET6, STREAM; 36 address bytes
		}
		b = append(b, src.Addr().AsSlice()...)
		b = append(b, dst.Addr().AsSlice()...)
		b = binary.BigEndian.AppendUint16(b, src.Port())
		return binary.BigEndian.AppendUint16(b, dst.Port()), nil
	}
	return b, fmt.Errorf("proxy: unknown PROXY protocol version %q", version)
}

// proxyV2Sig is the 12-byte signature that starts a version 2 header.
const proxyV2Sig = "\r\n\r\n\x00\r\nQUIT\n"
