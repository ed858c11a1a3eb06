package httpproxy

import (
	"bytes"
	"testing"
)

// FuzzParseRequestHead checks the scanner and the parser on any input:
// no panic; the same result whether the head arrives whole or in pieces;
// a head that parses has consistent framing, and the head the proxy
// forwards for it parses again to the same request, without hop-by-hop
// fields.
func FuzzParseRequestHead(f *testing.F) {
	for _, tt := range badRequests {
		f.Add([]byte(tt.in))
	}
	f.Add(benchHead)
	f.Fuzz(func(t *testing.T, data []byte) {
		var whole headScanner
		n, err := whole.scan(data)
		// The same input in three pieces.
		var sc headScanner
		a, b := len(data)/3, 2*len(data)/3
		var n2 int
		var err2 error
		for _, end := range []int{a, b, len(data)} {
			if n2, err2 = sc.scan(data[:end]); n2 > 0 || err2 != nil {
				break
			}
		}
		if n != n2 || (err == nil) != (err2 == nil) {
			t.Fatalf("whole: %d %v; in pieces: %d %v", n, err, n2, err2)
		}
		if err != nil || n == 0 {
			return
		}
		h := &reqHead{fields: make([]field, 0, maxFields)}
		if err := parseRequestHead(h, data[:n]); err != nil {
			if _, ok := err.(*httpError); !ok {
				t.Fatalf("error %v is not an *httpError", err)
			}
			return
		}
		if h.size != n || len(h.fields) > maxFields {
			t.Fatalf("size %d (want %d), %d fields", h.size, n, len(h.fields))
		}
		if h.chunked && h.contentLength >= 0 {
			t.Fatal("chunked with a Content-Length")
		}
		if !isToken(h.method.of(h.buf)) {
			t.Fatalf("method %q", h.method.of(h.buf))
		}
		c := &conn{head: *h}
		c.m.upgrade = h.upgrade && !onlyH2C(h)
		c.clientLen = copy(c.clientStr[:], "198.18.0.1")
		c.reqIDLen = copy(c.reqID[:], "id")
		st := &state{proto: "http", reqID: "X-Request-ID", reqIDLower: "x-request-id"}
		out := c.appendBackendHead(nil, st)
		var sc2 headScanner
		m, err := sc2.scan(out)
		if err == errTooManyFields || err == errHeadTooLarge {
			return // the added fields pushed it over a limit
		}
		if err != nil || m != len(out) {
			t.Fatalf("forwarded head %q: scan %d %v", out, m, err)
		}
		h2 := &reqHead{fields: make([]field, 0, maxFields+8)}
		if err := parseRequestHead(h2, out); err != nil {
			if err == errTooManyFields || err == errHeadTooLarge {
				return // the added fields pushed it over a limit
			}
			t.Fatalf("forwarded head %q does not parse: %v", out, err)
		}
		if !bytes.Equal(h.method.of(h.buf), h2.method.of(h2.buf)) || h.chunked != h2.chunked ||
			h.contentLength != h2.contentLength || h2.minor != 1 {
			t.Fatalf("forwarded head %q changed the request", out)
		}
		for _, fl := range h2.fields {
			switch fl.kind {
			case kKeepAlive, kProxyConnection, kTE:
				t.Fatalf("forwarded head %q keeps a hop-by-hop field", out)
			case kUpgrade, kConnection:
				if !c.m.upgrade {
					t.Fatalf("forwarded head %q keeps a hop-by-hop field", out)
				}
			}
			if fl.hop {
				t.Fatalf("forwarded head %q has a field its Connection names", out)
			}
		}
	})
}

// FuzzParseResponseHead checks the response parser: no panic, and a
// parsed head has consistent framing.
func FuzzParseResponseHead(f *testing.F) {
	f.Add([]byte("HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc"))
	f.Add([]byte("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n"))
	f.Add([]byte("HTTP/1.0 200 OK\r\nTransfer-Encoding: gzip, chunked\r\nConnection: x\r\nX: 1\r\n\r\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		sc := headScanner{resp: true}
		n, err := sc.scan(data)
		if err != nil || n == 0 {
			return
		}
		h := &respHead{fields: make([]field, 0, maxRespFields)}
		if err := parseResponseHead(h, data[:n]); err != nil {
			return
		}
		if h.status < 100 || h.status > 599 || h.size != n {
			t.Fatalf("status %d size %d", h.status, h.size)
		}
		if h.chunked && (h.contentLength >= 0 || h.untilClose) {
			t.Fatal("inconsistent framing")
		}
	})
}

// FuzzChunked checks the chunk parser: no panic, and the same data, end
// and verdict whether the body arrives whole or a byte at a time.
func FuzzChunked(f *testing.F) {
	f.Add([]byte("5\r\nhello\r\n0\r\n\r\n"))
	f.Add([]byte("a;x=\"y\"\r\n0123456789\r\n0\r\nT: 1\r\n\r\nrest"))
	f.Add([]byte("zz\r\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		run := func(step int) (string, int, bool, bool) {
			var ck chunkParser
			var out []byte
			p := data
			for len(p) > 0 && !ck.done() {
				piece := p[:min(step, len(p))]
				n, ds, err := ck.next(piece)
				if err != nil {
					return "", 0, false, true
				}
				if ds > n || n > len(piece) {
					t.Fatalf("n %d ds %d of %d", n, ds, len(piece))
				}
				out = append(out, piece[ds:n]...)
				p = p[n:]
			}
			return string(out), len(p), ck.done(), false
		}
		d1, r1, done1, e1 := run(len(data) + 1)
		d2, r2, done2, e2 := run(1)
		if d1 != d2 || r1 != r2 || done1 != done2 || e1 != e2 {
			t.Fatalf("whole: %q %d %v %v; bytewise: %q %d %v %v", d1, r1, done1, e1, d2, r2, done2, e2)
		}
	})
}
