package balance

import "net/netip"

// Key is the request's hash key for ip_hash and maglev: the source address,
// a header, a cookie or the URI, as the pool's hash_key says, hashed by the
// caller with HashString, HashBytes or HashAddr. A zero Key (Has false)
// makes the hash algorithms pick at random; other algorithms ignore keys.
type Key struct {
	Hash uint64
	Has  bool
}

// The hash is FNV-1a 64 (draft-eastlake-fnv) followed by the MurmurHash3
// 64-bit finaliser, so that the low bits used by modulo and by Maglev's
// slot index are well mixed. It takes no seed: every node of a cluster, and
// every restart, computes the same value for the same input, which keeps a
// client on the same backend whichever node serves it. Changing it remaps
// every key; TestHashGolden pins it.
const (
	fnvOffset64 = 14695981039346656037
	fnvPrime64  = 1099511628211
)

// HashString hashes s, e.g. a header value, cookie value or URI.
func HashString(s string) Key {
	h := uint64(fnvOffset64)
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= fnvPrime64
	}
	return Key{Hash: fmix64(h), Has: true}
}

// HashBytes hashes p; HashBytes(p) == HashString(string(p)).
func HashBytes(p []byte) Key {
	h := uint64(fnvOffset64)
	for _, c := range p {
		h ^= uint64(c)
		h *= fnvPrime64
	}
	return Key{Hash: fmix64(h), Has: true}
}

// HashAddr hashes a client address for hash_key = "source_ip". An IPv4
// address and its IPv4-mapped IPv6 form hash alike; the zone is ignored.
// The invalid address gives the zero Key.
func HashAddr(a netip.Addr) Key {
	if !a.IsValid() {
		return Key{}
	}
	b := a.Unmap().As16()
	return HashBytes(b[:])
}

// fmix64 is the MurmurHash3 64-bit finaliser.
func fmix64(x uint64) uint64 {
	x ^= x >> 33
	x *= 0xff51afd7ed558ccd
	x ^= x >> 33
	x *= 0xc4ceb9fe1a85ec53
	x ^= x >> 33
	return x
}
