package vrrp

import (
	"encoding/binary"
	"errors"
	"net/netip"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

var (
	v6a  = netip.MustParseAddr("2001:db8::11")
	v6ll = netip.MustParseAddr("fe80::1")
	v6v  = netip.MustParseAddr("2001:db8::100")
)

var equateAddr = cmpopts.EquateComparable(netip.Addr{})

func TestRoundTrip(t *testing.T) {
	tests := []struct {
		name     string
		adv      Advert
		src, dst netip.Addr
		wantLen  int
	}{
		{
			name: "v3 IPv4 multicast",
			adv:  Advert{Version: 3, Type: 1, VRID: 51, Priority: 150, Interval: time.Second, Addrs: []netip.Addr{vip}},
			src:  lb1, dst: Group4, wantLen: 12,
		},
		{
			name: "v3 IPv4 unicast, three addresses, max interval",
			adv: Advert{Version: 3, Type: 1, VRID: 1, Priority: 255, Interval: MaxIntervalV3,
				Addrs: []netip.Addr{vip, netip.MustParseAddr("198.18.0.101"), netip.MustParseAddr("198.18.0.102")}},
			src: lb1, dst: lb2, wantLen: 20,
		},
		{
			name: "v3 IPv4 legacy unicast checksum",
			adv:  Advert{Version: 3, Type: 1, VRID: 7, Priority: 100, Interval: 10 * time.Millisecond, Addrs: []netip.Addr{vip}, LegacyChecksum: true},
			src:  lb1, dst: lb2, wantLen: 12,
		},
		{
			name: "v3 IPv6 multicast",
			adv:  Advert{Version: 3, Type: 1, VRID: 51, Priority: 100, Interval: 100 * time.Millisecond, Addrs: []netip.Addr{v6ll, v6v}},
			src:  v6a, dst: Group6, wantLen: 40,
		},
		{
			name: "v2 IPv4 simple password",
			adv: Advert{Version: 2, Type: 1, VRID: 200, Priority: 0, Interval: 3 * time.Second, Addrs: []netip.Addr{vip},
				AuthType: AuthSimple, AuthData: [8]byte{'s', 'e', 'c', 'r', 'e', 't'}},
			src: lb1, dst: Group4, wantLen: 20,
		},
		{
			name: "v2 IPv6 as keepalived sends it",
			adv:  Advert{Version: 2, Type: 1, VRID: 9, Priority: 20, Interval: MaxIntervalV2, Addrs: []netip.Addr{v6v}},
			src:  v6a, dst: Group6, wantLen: 24,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := tt.adv.Marshal(tt.src, tt.dst)
			if err != nil {
				t.Fatalf("Marshal: %v", err)
			}
			if len(b) != tt.wantLen {
				t.Errorf("length %d, want %d", len(b), tt.wantLen)
			}
			got, err := Parse(b, tt.src, tt.dst)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if diff := cmp.Diff(&tt.adv, got, equateAddr); diff != "" {
				t.Errorf("round trip (-want +got):\n%s", diff)
			}
			// Any flipped bit is caught by the checksum or a field check.
			for i := range len(b) * 8 {
				c := clone(b)
				c[i/8] ^= 1 << (i % 8)
				if a, err := Parse(c, tt.src, tt.dst); err == nil && cmp.Equal(a, got, equateAddr) {
					t.Errorf("bit %d flipped: parsed to the same advert without error", i)
				}
			}
		})
	}
}

// TestV3ReservedBitsIgnored: RFC 5798 §5.2.5, the 4 reserved bits are
// ignored on reception.
func TestV3ReservedBitsIgnored(t *testing.T) {
	b := mustHex(t, "31339601000acb9dc6120064")
	b[4] |= 0xf0
	binary.BigEndian.PutUint16(b[6:], 0)
	binary.BigEndian.PutUint16(b[6:], ^fold(sum16(pseudoSum(lb1, Group4, len(b)), b)))
	a, err := Parse(b, lb1, Group4)
	if err != nil {
		t.Fatal(err)
	}
	if a.Interval != 100*time.Millisecond {
		t.Errorf("interval %v, want 100ms", a.Interval)
	}
}

func TestParseErrors(t *testing.T) {
	good2 := mustHex(t, "2133960100018253c61200640000000000000000")
	good3 := mustHex(t, "31339601000acb9dc6120064")
	// resum recomputes a version 3 IPv4 checksum after an edit, so that
	// the check under test is the one that fails.
	resum3 := func(b []byte) []byte {
		binary.BigEndian.PutUint16(b[6:], 0)
		binary.BigEndian.PutUint16(b[6:], ^fold(sum16(pseudoSum(lb1, Group4, len(b)), b)))
		return b
	}
	resum2 := func(b []byte) []byte {
		binary.BigEndian.PutUint16(b[6:], 0)
		binary.BigEndian.PutUint16(b[6:], ^fold(sum16(0, b)))
		return b
	}
	edit := func(b []byte, i int, v byte) []byte { c := clone(b); c[i] = v; return c }
	tests := []struct {
		name     string
		b        []byte
		src, dst netip.Addr
		want     error
	}{
		{"empty", nil, lb1, Group4, ErrTruncated},
		{"7 bytes", good3[:7], lb1, Group4, ErrTruncated},
		{"address cut", good3[:11], lb1, Group4, ErrTruncated},
		{"v2 auth data cut", good2[:19], lb1, Group4, ErrTruncated},
		{"trailing byte", append(clone(good3), 0), lb1, Group4, ErrLength},
		{"v2 trailing bytes", append(clone(good2), 0, 0), lb1, Group4, ErrLength},
		{"version 1", edit(good3, 0, 0x11), lb1, Group4, ErrVersion},
		{"version 4", edit(good3, 0, 0x41), lb1, Group4, ErrVersion},
		{"type 2", edit(good3, 0, 0x32), lb1, Group4, ErrType},
		{"type 0", edit(good3, 0, 0x30), lb1, Group4, ErrType},
		{"count 0", edit(good3, 3, 0), lb1, Group4, ErrAddrCount},
		{"count 2, one address", edit(good3, 3, 2), lb1, Group4, ErrTruncated},
		{"IPv4 packet from IPv6 source", good3, v6a, Group6, ErrTruncated},
		{"mixed families", good3, lb1, Group6, ErrAddrFamily},
		{"no source", good3, netip.Addr{}, Group4, ErrAddrFamily},
		{"v3 checksum", edit(good3, 7, 0x9e), lb1, Group4, ErrChecksum},
		{"v3 wrong source in pseudo-header", good3, lb2, Group4, ErrChecksum},
		{"v2 checksum", edit(good2, 2, 151), lb1, Group4, ErrChecksum},
		{"v2 auth data changed", edit(good2, 19, 1), lb1, Group4, ErrChecksum},
		{"v3 interval 0", resum3(edit(good3, 5, 0)), lb1, Group4, ErrInterval},
		{"v2 interval 0", resum2(edit(good2, 5, 0)), lb1, Group4, ErrInterval},
		{"v2 auth type 3", resum2(edit(good2, 4, 3)), lb1, Group4, ErrAuthType},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := Advert{VRID: 99}
			err := ParseInto(&a, tt.b, tt.src, tt.dst)
			if !errors.Is(err, tt.want) {
				t.Fatalf("err %v, want %v", err, tt.want)
			}
			if a.VRID != 99 {
				t.Errorf("ParseInto changed the advert on error")
			}
		})
	}
}

func TestMarshalErrors(t *testing.T) {
	ok := Advert{Version: 3, VRID: 1, Priority: 100, Interval: time.Second, Addrs: []netip.Addr{vip}}
	with := func(f func(a *Advert)) Advert { a := ok; f(&a); return a }
	many := make([]netip.Addr, 256)
	for i := range many {
		many[i] = vip
	}
	tests := []struct {
		name     string
		adv      Advert
		src, dst netip.Addr
		want     error
	}{
		{"version 4", with(func(a *Advert) { a.Version = 4 }), lb1, Group4, ErrVersion},
		{"type 2", with(func(a *Advert) { a.Type = 2 }), lb1, Group4, ErrType},
		{"v3 interval 0", with(func(a *Advert) { a.Interval = 0 }), lb1, Group4, ErrInterval},
		{"v3 interval 15ms", with(func(a *Advert) { a.Interval = 15 * time.Millisecond }), lb1, Group4, ErrInterval},
		{"v3 interval 41s", with(func(a *Advert) { a.Interval = 41 * time.Second }), lb1, Group4, ErrInterval},
		{"v2 interval 1.5s", with(func(a *Advert) { a.Version = 2; a.Interval = 1500 * time.Millisecond }), lb1, Group4, ErrInterval},
		{"v2 interval 256s", with(func(a *Advert) { a.Version = 2; a.Interval = 256 * time.Second }), lb1, Group4, ErrInterval},
		{"v2 auth type 3", with(func(a *Advert) { a.Version = 2; a.AuthType = 3 }), lb1, Group4, ErrAuthType},
		{"no address", with(func(a *Advert) { a.Addrs = nil }), lb1, Group4, ErrAddrCount},
		{"256 addresses", with(func(a *Advert) { a.Addrs = many }), lb1, Group4, ErrAddrCount},
		{"IPv6 address in IPv4 advert", with(func(a *Advert) { a.Addrs = []netip.Addr{v6v} }), lb1, Group4, ErrAddrFamily},
		{"IPv4 address in IPv6 advert", ok, v6a, Group6, ErrAddrFamily},
		{"mixed src and dst", ok, lb1, Group6, ErrAddrFamily},
		{"no destination", ok, lb1, netip.Addr{}, ErrAddrFamily},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			buf := []byte{1, 2, 3}
			got, err := tt.adv.AppendMarshal(buf, tt.src, tt.dst)
			if !errors.Is(err, tt.want) {
				t.Fatalf("err %v, want %v", err, tt.want)
			}
			if diff := cmp.Diff([]byte{1, 2, 3}, got); diff != "" {
				t.Errorf("buffer changed on error (-want +got):\n%s", diff)
			}
		})
	}
}

// TestAppendMarshalAppends checks that AppendMarshal keeps what b holds and
// works from 4-in-6 mapped source and destination addresses.
func TestAppendMarshalAppends(t *testing.T) {
	a := Advert{Version: 3, VRID: 51, Priority: 150, Interval: 100 * time.Millisecond, Addrs: []netip.Addr{vip}}
	b, err := a.AppendMarshal([]byte("head"), netip.AddrFrom16(lb1.As16()), netip.AddrFrom16(Group4.As16()))
	if err != nil {
		t.Fatal(err)
	}
	want := append([]byte("head"), mustHex(t, "31339601000acb9dc6120064")...)
	if diff := cmp.Diff(want, b); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestPacketPathDoesNotAllocate(t *testing.T) {
	a := Advert{Version: 3, VRID: 51, Priority: 150, Interval: time.Second, Addrs: []netip.Addr{v6ll, v6v}}
	buf := make([]byte, 0, 64)
	var got Advert
	got.Addrs = make([]netip.Addr, 0, 4)
	allocs := testing.AllocsPerRun(100, func() {
		b, err := a.AppendMarshal(buf[:0], v6a, Group6)
		if err != nil {
			t.Fatal(err)
		}
		if err := ParseInto(&got, b, v6a, Group6); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Errorf("AppendMarshal + ParseInto: %v allocations, want 0", allocs)
	}
}
