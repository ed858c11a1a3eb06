package balance

import (
	"hash/fnv"
	"net/netip"
	"testing"
)

// TestHashGolden pins the hash: every node of a cluster and every release
// must map a key to the same value, or sticky clients move.
func TestHashGolden(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want uint64
	}{
		{"", 0xefd01f60ba992926},
		{"198.18.0.10", 0x680111fdd1abf12a},
		{"user-42", 0xa39532c7ab051e8d},
	} {
		if got := HashString(tc.in); got.Hash != tc.want || !got.Has {
			t.Errorf("HashString(%q) = %#x, want %#x", tc.in, got.Hash, tc.want)
		}
	}
}

func TestHashIsFNV1aThenFmix(t *testing.T) {
	for _, s := range []string{"", "a", "X-User-ID: 42", "/api/v1/items?id=7"} {
		h := fnv.New64a()
		h.Write([]byte(s))
		want := fmix64(h.Sum64())
		if got := HashString(s).Hash; got != want {
			t.Errorf("HashString(%q) = %#x, want fmix64(fnv1a) = %#x", s, got, want)
		}
		if got := HashBytes([]byte(s)); got != HashString(s) {
			t.Errorf("HashBytes(%q) = %v, HashString = %v", s, got, HashString(s))
		}
	}
}

func TestHashAddr(t *testing.T) {
	v4 := netip.MustParseAddr("198.18.0.10")
	mapped := netip.MustParseAddr("::ffff:198.18.0.10")
	zoned := netip.MustParseAddr("fe80::1%eth0")
	if HashAddr(v4) != HashAddr(mapped) {
		t.Error("IPv4 and IPv4-mapped IPv6 forms hash differently")
	}
	if HashAddr(zoned) != HashAddr(zoned.WithZone("")) {
		t.Error("zone changes the hash")
	}
	if HashAddr(v4) == HashAddr(netip.MustParseAddr("198.18.0.11")) {
		t.Error("neighbouring addresses hash alike")
	}
	if got := HashAddr(netip.Addr{}); got.Has {
		t.Errorf("HashAddr(invalid) = %+v, want zero Key", got)
	}
}
