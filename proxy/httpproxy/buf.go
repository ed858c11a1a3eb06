package httpproxy

import (
	"io"
	"sync"
)

// Buffer sizes. A connection waiting for its next request holds a small
// buffer only; a request in flight borrows large ones from a pool and
// returns them when it ends, so memory follows the requests in flight, not
// the connections open.
const (
	smallBufSize = 4 << 10
	largeBufSize = 32 << 10 // > maxHeadBytes: a whole head fits
)

var (
	smallBufs = sync.Pool{New: func() any { b := make([]byte, smallBufSize); return &b }}
	largeBufs = sync.Pool{New: func() any { b := make([]byte, largeBufSize); return &b }}
)

func getLarge() *[]byte { return largeBufs.Get().(*[]byte) }

// putBuf returns a buffer from getLarge or the small pool; buffers of other
// sizes (grown by append) are left to the collector.
func putBuf(p *[]byte) {
	if p == nil {
		return
	}
	switch cap(*p) {
	case smallBufSize:
		*p = (*p)[:smallBufSize]
		smallBufs.Put(p)
	case largeBufSize:
		*p = (*p)[:largeBufSize]
		largeBufs.Put(p)
	}
}

// inbuf is a read buffer: b[r:w] is received and not yet consumed.
type inbuf struct {
	p    *[]byte
	b    []byte
	r, w int
}

func (in *inbuf) data() []byte { return in.b[in.r:in.w] }
func (in *inbuf) len() int     { return in.w - in.r }
func (in *inbuf) consume(n int) {
	in.r += n
	if in.r == in.w {
		in.r, in.w = 0, 0
	}
}

// get gives in a buffer of the given pool if it has none.
func (in *inbuf) get(large bool) {
	if in.p != nil {
		return
	}
	if large {
		in.p = getLarge()
	} else {
		in.p = smallBufs.Get().(*[]byte)
	}
	in.b = *in.p
	in.r, in.w = 0, 0
}

// release returns the buffer to its pool. Unconsumed bytes are lost: the
// caller releases only an empty buffer, or when the connection ends.
func (in *inbuf) release() {
	putBuf(in.p)
	in.p, in.b = nil, nil
	in.r, in.w = 0, 0
}

// shrink trades a large buffer for a small one when what it holds fits.
func (in *inbuf) shrink() {
	if in.p == nil || cap(in.b) == smallBufSize || in.len() > smallBufSize {
		return
	}
	p := smallBufs.Get().(*[]byte)
	n := copy(*p, in.data())
	putBuf(in.p)
	in.p, in.b = p, *p
	in.r, in.w = 0, n
}

// room makes free space after w: moves the data to the front, and grows a
// small buffer to a large one when it is full. It reports false when a
// large buffer is full.
func (in *inbuf) room() bool {
	if in.w < len(in.b) {
		return true
	}
	if in.r > 0 {
		n := copy(in.b, in.b[in.r:in.w])
		in.r, in.w = 0, n
		return true
	}
	if cap(in.b) >= largeBufSize {
		return false
	}
	p := getLarge()
	n := copy(*p, in.data())
	putBuf(in.p)
	in.p, in.b = p, *p
	in.r, in.w = 0, n
	return true
}

// fill reads once from r into the free space. It returns the bytes read.
func (in *inbuf) fill(r io.Reader) (int, error) {
	if !in.room() {
		return 0, errHeadTooLarge
	}
	n, err := r.Read(in.b[in.w:])
	in.w += n
	return n, err
}
