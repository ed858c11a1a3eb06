package vrrp

import (
	"encoding/binary"
	"errors"
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// FuzzParse feeds Parse arbitrary messages with arbitrary 4- or 16-byte source
// and destination addresses. Seeds (testdata/fuzz/FuzzParse) hold the
// keepalived captures, the legacy unicast form, IPv6 forms and truncations.
// Inputs refused only for their checksum are retried with a correct one.
// Properties: Parse never panics; whatever parses re-marshals to bytes that
// parse to the same advert and equal the input outside the checksum and the
// reserved bits.
func FuzzParse(f *testing.F) {
	f.Fuzz(func(t *testing.T, b, srcb, dstb []byte) {
		src, ok1 := netip.AddrFromSlice(srcb)
		dst, ok2 := netip.AddrFromSlice(dstb)
		if !ok1 || !ok2 {
			src, dst = netip.Addr{}, netip.Addr{}
		}
		a, err := Parse(b, src, dst)
		if errors.Is(err, ErrChecksum) {
			// Mend the checksum so that the fuzzer also reaches the
			// checks and the round trip behind it.
			b = withChecksum(b, src, dst)
			a, err = Parse(b, src, dst)
			if err == ErrChecksum {
				t.Fatalf("mended checksum refused: %x", b)
			}
		}
		if err != nil {
			return
		}
		again, err := a.Marshal(src, dst)
		if err != nil {
			t.Fatalf("Marshal of a parsed advert %+v: %v", a, err)
		}
		a2, err := Parse(again, src, dst)
		if err != nil {
			t.Fatalf("Parse of re-marshalled %x: %v", again, err)
		}
		if diff := cmp.Diff(a, a2, equateAddr); diff != "" {
			t.Fatalf("re-parsed advert differs (-first +second):\n%s", diff)
		}
		want := clone(b)
		want[6], want[7], again[6], again[7] = 0, 0, 0, 0
		if a.Version == 3 {
			want[4] &= 0x0f // reserved bits, ignored on receipt
		}
		if diff := cmp.Diff(want, again); diff != "" {
			t.Fatalf("re-marshalled bytes differ (-input +output):\n%s", diff)
		}
	})
}

// withChecksum returns a copy of the message b with the standard checksum for
// src and dst. b has passed Parse's length and family checks.
func withChecksum(b []byte, src, dst netip.Addr) []byte {
	src, dst = src.Unmap(), dst.Unmap()
	c := clone(b)
	binary.BigEndian.PutUint16(c[6:], 0)
	var s uint32
	if c[0]>>4 == 3 || !src.Is4() {
		s = pseudoSum(src, dst, len(c))
	}
	binary.BigEndian.PutUint16(c[6:], ^fold(sum16(s, c)))
	return c
}
