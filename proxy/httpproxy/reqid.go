package httpproxy

import (
	"crypto/rand"
	"encoding/binary"
	"sync/atomic"
)

// Request ids are 32 hexadecimal digits: a random 64-bit prefix drawn once
// per process, so that ids of different nodes and restarts do not collide,
// and a counter, so that making one costs an atomic add.
var (
	reqIDPrefix  [16]byte
	reqIDCounter atomic.Uint64
)

func init() {
	var b [8]byte
	rand.Read(b[:]) // never fails (crypto/rand panics rather than return short)
	appendHex64(reqIDPrefix[:0], binary.BigEndian.Uint64(b[:]))
	reqIDCounter.Store(binary.BigEndian.Uint64(b[:]) >> 40) // ids of one process need not start at 0
}

const maxRequestID = 64 // a longer id from the client is replaced

// appendRequestID appends a new request id to dst.
func appendRequestID(dst []byte) []byte {
	dst = append(dst, reqIDPrefix[:]...)
	return appendHex64(dst, reqIDCounter.Add(1))
}

func appendHex64(dst []byte, v uint64) []byte {
	const hex = "0123456789abcdef"
	for i := 60; i >= 0; i -= 4 {
		dst = append(dst, hex[(v>>uint(i))&0xf])
	}
	return dst
}

// validRequestID reports whether a client's id can be passed on: 1 to 64
// visible ASCII characters.
func validRequestID(v []byte) bool {
	if len(v) == 0 || len(v) > maxRequestID {
		return false
	}
	for _, c := range v {
		if c <= ' ' || c >= 0x7f {
			return false
		}
	}
	return true
}
