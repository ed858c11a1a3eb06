package httpproxy

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// parsed is what a test checks of a parsed head.
type parsed struct {
	Method, Target, Path, Host string
	Minor                      int
	CL                         int64
	Chunked, Close, Upgrade    bool
	Fields                     []string // "name: value", hop-by-hop ones marked "(hop)"
}

func summarize(h *reqHead) parsed {
	p := parsed{
		Method: string(h.method.of(h.buf)), Target: string(h.target.of(h.buf)),
		Path: string(h.path.of(h.buf)), Host: string(h.host.of(h.buf)),
		Minor: int(h.minor), CL: h.contentLength, Chunked: h.chunked, Close: h.close, Upgrade: h.upgrade,
	}
	for _, f := range h.fields {
		s := string(f.name.of(h.buf)) + ": " + string(f.value.of(h.buf))
		if f.hop {
			s += " (hop)"
		}
		p.Fields = append(p.Fields, s)
	}
	return p
}

// parseAll runs the scanner and the parser as the proxy does.
func parseAll(s string) (*reqHead, error) {
	h := &reqHead{fields: make([]field, 0, maxFields)}
	var sc headScanner
	n, err := sc.scan([]byte(s))
	if err != nil {
		return nil, err
	}
	if n == 0 {
		return nil, errIncomplete
	}
	return h, parseRequestHead(h, []byte(s)[:n])
}

func TestParseRequestHeadValid(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want parsed
	}{{
		name: "simple GET",
		in:   "GET /a?b=c HTTP/1.1\r\nHost: example.com\r\nUser-Agent: t\r\n\r\n",
		want: parsed{Method: "GET", Target: "/a?b=c", Path: "/a?b=c", Host: "example.com", Minor: 1, CL: -1,
			Fields: []string{"Host: example.com", "User-Agent: t"}},
	}, {
		name: "leading empty line and OWS trimmed",
		in:   "\r\nPOST /p HTTP/1.1\r\nHost:  h \r\nContent-Length: 5\r\nX-Empty:\r\n\r\n",
		want: parsed{Method: "POST", Target: "/p", Path: "/p", Host: "h", Minor: 1, CL: 5,
			Fields: []string{"Host: h", "Content-Length: 5", "X-Empty: "}},
	}, {
		name: "equal Content-Length repeated",
		in:   "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 7\r\nContent-Length: 7, 7\r\n\r\n",
		want: parsed{Method: "POST", Target: "/", Path: "/", Host: "h", Minor: 1, CL: 7,
			Fields: []string{"Host: h", "Content-Length: 7", "Content-Length: 7, 7"}},
	}, {
		name: "chunked, case-insensitive, over two fields",
		in:   "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: \r\ntransfer-encoding: CHUNKED\r\n\r\n",
		want: parsed{Method: "POST", Target: "/", Path: "/", Host: "h", Minor: 1, CL: -1, Chunked: true,
			Fields: []string{"Host: h", "Transfer-Encoding: ", "transfer-encoding: CHUNKED"}},
	}, {
		name: "Connection options mark fields hop-by-hop, not Host",
		in:   "GET / HTTP/1.1\r\nHost: h\r\nConnection: close, X-A, host\r\nX-A: 1\r\nx-a: 2\r\nX-B: 3\r\n\r\n",
		want: parsed{Method: "GET", Target: "/", Path: "/", Host: "h", Minor: 1, CL: -1, Close: true,
			Fields: []string{"Host: h", "Connection: close, X-A, host", "X-A: 1 (hop)", "x-a: 2 (hop)", "X-B: 3"}},
	}, {
		name: "absolute-form takes the host from the target",
		in:   "GET http://Other.example:8080/x?y HTTP/1.1\r\nHost: ignored\r\n\r\n",
		want: parsed{Method: "GET", Target: "http://Other.example:8080/x?y", Path: "/x?y", Host: "Other.example:8080", Minor: 1, CL: -1,
			Fields: []string{"Host: ignored"}},
	}, {
		name: "HTTP/1.0 without Host closes by default",
		in:   "GET / HTTP/1.0\r\n\r\n",
		want: parsed{Method: "GET", Target: "/", Path: "/", Minor: 0, CL: -1, Close: true},
	}, {
		name: "HTTP/1.0 keep-alive",
		in:   "GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n",
		want: parsed{Method: "GET", Target: "/", Path: "/", Minor: 0, CL: -1,
			Fields: []string{"Connection: Keep-Alive"}},
	}, {
		name: "websocket upgrade",
		in:   "GET /ws HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
		want: parsed{Method: "GET", Target: "/ws", Path: "/ws", Host: "h", Minor: 1, CL: -1, Upgrade: true,
			Fields: []string{"Host: h", "Connection: Upgrade", "Upgrade: websocket"}},
	}, {
		name: "OPTIONS *",
		in:   "OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n",
		want: parsed{Method: "OPTIONS", Target: "*", Path: "*", Host: "h", Minor: 1, CL: -1, Fields: []string{"Host: h"}},
	}, {
		name: "obs-text in a value",
		in:   "GET / HTTP/1.1\r\nHost: h\r\nX-Name: caf\xc3\xa9\r\n\r\n",
		want: parsed{Method: "GET", Target: "/", Path: "/", Host: "h", Minor: 1, CL: -1,
			Fields: []string{"Host: h", "X-Name: caf\xc3\xa9"}},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, err := parseAll(tt.in)
			if err != nil {
				t.Fatalf("parse: %v", err)
			}
			if diff := cmp.Diff(tt.want, summarize(h)); diff != "" {
				t.Errorf("(-want +got)\n%s", diff)
			}
		})
	}
}

// badRequests are heads the proxy must refuse, with the status it
// answers. hardening_test.go sends each through a running proxy too.
var badRequests = []struct {
	name   string
	in     string
	status int
}{
	{"Content-Length and Transfer-Encoding", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400},
	{"Transfer-Encoding and Content-Length", "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n", 400},
	{"differing Content-Length", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!", 400},
	{"differing Content-Length in a list", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5, 6\r\n\r\nhello!", 400},
	{"signed Content-Length", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: +5\r\n\r\nhello", 400},
	{"hex Content-Length", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 0x5\r\n\r\nhello", 400},
	{"huge Content-Length", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 99999999999999999999999\r\n\r\n", 400},
	{"empty Content-Length", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length:\r\n\r\n", 400},
	{"chunked not last", "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked, gzip\r\n\r\n0\r\n\r\n", 400},
	{"chunked twice", "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400},
	{"gzip only", "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip\r\n\r\n", 400},
	{"misspelt chunked", "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunk\r\n\r\n", 400},
	{"chunked with a space inside the token", "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chun ked\r\n\r\n", 400},
	{"other coding before chunked", "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", 501},
	{"Transfer-Encoding in HTTP/1.0", "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400},
	{"obs-fold", "GET / HTTP/1.1\r\nHost: h\r\nX-A: 1\r\n 2\r\n\r\n", 400},
	{"obs-fold with tab", "GET / HTTP/1.1\r\nHost: h\r\nX-A: 1\r\n\t2\r\n\r\n", 400},
	{"invalid chunk size", "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n", 400},
	{"chunk size overflow", "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n10000000000000000\r\n", 400},
	{"negative chunk size", "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n-5\r\nhello\r\n0\r\n\r\n", 400},
	{"chunk size with bare LF", "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n5\nhello\r\n0\r\n\r\n", 400},
	{"chunk data without CRLF", "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhelloXX0\r\n\r\n", 400},
	{"chunk extension with bare LF", "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n5;a=\nb\r\nhello\r\n0\r\n\r\n", 400},
	{"NUL in a value", "GET / HTTP/1.1\r\nHost: h\r\nX-A: a\x00b\r\n\r\n", 400},
	{"bare CR in a value", "GET / HTTP/1.1\r\nHost: h\r\nX-A: a\rb\r\n\r\n", 400},
	{"bare CR ending a line", "GET / HTTP/1.1\r\nHost: h\r\nX-A: a\r\rX-B: b\r\n\r\n", 400},
	{"control character in a value", "GET / HTTP/1.1\r\nHost: h\r\nX-A: a\x01b\r\n\r\n", 400},
	{"LF-only line endings", "GET / HTTP/1.1\nHost: h\n\n", 400},
	{"LF-only last line", "GET / HTTP/1.1\r\nHost: h\r\n\n", 400},
	{"LF-only in the middle", "GET / HTTP/1.1\r\nHost: h\nX-A: 1\r\n\r\n", 400},
	{"Transfer_Encoding look-alike", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nTransfer_Encoding: chunked\r\n\r\n0\r\n\r\n", 400},
	{"Content_Length look-alike", "POST / HTTP/1.1\r\nHost: h\r\nContent_Length: 5\r\n\r\nhello", 400},
	{"space before colon", "GET / HTTP/1.1\r\nHost: h\r\nContent-Length : 5\r\n\r\nhello", 400},
	{"empty field name", "GET / HTTP/1.1\r\nHost: h\r\n: x\r\n\r\n", 400},
	{"no colon", "GET / HTTP/1.1\r\nHost: h\r\nJunk\r\n\r\n", 400},
	{"missing Host", "GET / HTTP/1.1\r\nX-A: 1\r\n\r\n", 400},
	{"two Hosts", "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400},
	{"bad Host", "GET / HTTP/1.1\r\nHost: a b/c\r\n\r\n", 400},
	{"two spaces in request line", "GET  / HTTP/1.1\r\nHost: h\r\n\r\n", 400},
	{"tab in request line", "GET\t/ HTTP/1.1\r\nHost: h\r\n\r\n", 400},
	{"lower-case version", "GET / http/1.1\r\nHost: h\r\n\r\n", 400},
	{"HTTP/2.0 request line", "GET / HTTP/2.0\r\nHost: h\r\n\r\n", 505},
	{"bad method", "G(T / HTTP/1.1\r\nHost: h\r\n\r\n", 400},
	{"control character in target", "GET /a\x7fb HTTP/1.1\r\nHost: h\r\n\r\n", 400},
	{"non-ASCII target", "GET /caf\xc3\xa9 HTTP/1.1\r\nHost: h\r\n\r\n", 400},
	{"relative target", "GET a/b HTTP/1.1\r\nHost: h\r\n\r\n", 400},
	{"userinfo in absolute target", "GET http://u@h/ HTTP/1.1\r\nHost: h\r\n\r\n", 400},
	{"asterisk not for OPTIONS", "GET * HTTP/1.1\r\nHost: h\r\n\r\n", 400},
	{"CONNECT", "CONNECT h:443 HTTP/1.1\r\nHost: h:443\r\n\r\n", 405},
	{"malformed Connection", "GET / HTTP/1.1\r\nHost: h\r\nConnection: a b\r\n\r\n", 400},
	{"request line too long", "GET /" + strings.Repeat("a", maxRequestLine) + " HTTP/1.1\r\nHost: h\r\n\r\n", 414},
	{"request line too long, unfinished", "GET /" + strings.Repeat("a", maxRequestLine+10), 414},
	{"too many fields", "GET / HTTP/1.1\r\nHost: h\r\n" + strings.Repeat("X-A: 1\r\n", maxFields) + "\r\n", 431},
	{"header section too large", "GET / HTTP/1.1\r\nHost: h\r\n" + strings.Repeat("X-A: "+strings.Repeat("b", 1000)+"\r\n", maxHeadBytes/1000+1) + "\r\n", 431},
	{"header section too large, unfinished", "GET / HTTP/1.1\r\nHost: h\r\nX-A: " + strings.Repeat("b", maxHeadBytes), 431},
}

func TestParseRequestHeadRefuses(t *testing.T) {
	for _, tt := range badRequests {
		t.Run(tt.name, func(t *testing.T) {
			h, err := parseAll(tt.in)
			if err == nil && h.chunked {
				// Framing errors inside the body: the chunk parser's job.
				var ck chunkParser
				for p := []byte(tt.in)[h.size:]; len(p) > 0 && err == nil && !ck.done(); {
					var n int
					n, _, err = ck.next(p)
					p = p[n:]
				}
			}
			he, ok := err.(*httpError)
			if !ok {
				t.Fatalf("got %v, want a %d error", err, tt.status)
			}
			if he.status != tt.status {
				t.Errorf("status %d (%v), want %d", he.status, he, tt.status)
			}
		})
	}
}

// TestScanIncremental feeds heads byte by byte: the scanner must find the
// same end as when the head arrives whole.
func TestScanIncremental(t *testing.T) {
	for _, in := range []string{
		"GET / HTTP/1.1\r\nHost: h\r\n\r\nNEXT",
		"\r\n\r\nGET / HTTP/1.1\r\nHost: h\r\nX: y\r\n\r\n",
	} {
		var whole headScanner
		want, err := whole.scan([]byte(in))
		if err != nil {
			t.Fatal(err)
		}
		var sc headScanner
		got := 0
		for i := 1; i <= len(in) && got == 0; i++ {
			if got, err = sc.scan([]byte(in[:i])); err != nil {
				t.Fatal(err)
			}
		}
		if got != want {
			t.Errorf("%q: incremental end %d, whole %d", in, got, want)
		}
	}
}

func TestParseResponseHead(t *testing.T) {
	tests := []struct {
		name                  string
		in                    string
		status                int
		cl                    int64
		chunked, close, until bool
		err                   bool
	}{
		{"length", "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n", 200, 3, false, false, false, false},
		{"chunked", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", 200, -1, true, false, false, false},
		{"no reason", "HTTP/1.1 204\r\n\r\n", 204, -1, false, false, false, false},
		{"HTTP/1.0 closes", "HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\n", 200, 1, false, true, false, false},
		{"HTTP/1.0 keep-alive", "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 1\r\n\r\n", 200, 1, false, false, false, false},
		{"gzip last reads until close", "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n", 200, -1, false, true, true, false},
		{"CL and TE", "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n", 0, 0, false, false, false, true},
		{"differing CL", "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n", 0, 0, false, false, false, true},
		{"bad status", "HTTP/1.1 20 OK\r\n\r\n", 0, 0, false, false, false, true},
		{"status out of range", "HTTP/1.1 999 OK\r\n\r\n", 0, 0, false, false, false, true},
		{"obs-fold", "HTTP/1.1 200 OK\r\nX: a\r\n b\r\n\r\n", 0, 0, false, false, false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := &respHead{fields: make([]field, 0, maxRespFields)}
			err := parseResponseHead(h, []byte(tt.in))
			if tt.err {
				if err == nil {
					t.Fatal("parsed, want an error")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got := []any{h.status, h.contentLength, h.chunked, h.close, h.untilClose}
			want := []any{tt.status, tt.cl, tt.chunked, tt.close, tt.until}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("status, length, chunked, close, untilClose (-want +got)\n%s", diff)
			}
		})
	}
}

func TestChunkParser(t *testing.T) {
	tests := []struct {
		name string
		in   string
		data string
		rest string // bytes after the body
		err  bool
	}{
		{"two chunks", "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\nNEXT", "hello world", "NEXT", false},
		{"extensions and trailers", "5;a=b;c\r\nhello\r\n0\r\nX-T: 1\r\nY: 2\r\n\r\n", "hello", "", false},
		{"upper-case hex and leading zeros", "00A\r\n0123456789\r\n0\r\n\r\n", "0123456789", "", false},
		{"whitespace before extension", "5 ;x\r\nhello\r\n0\r\n\r\n", "hello", "", false},
		{"whitespace alone", "5 \r\nhello\r\n0\r\n\r\n", "", "", true},
		{"empty size", "\r\nhello\r\n0\r\n\r\n", "", "", true},
		{"bare LF after data", "5\r\nhello\n0\r\n\r\n", "", "", true},
		{"trailer fold", "0\r\nX: 1\r\n 2\r\n\r\n", "", "", true},
		{"trailer without colon", "0\r\nXY\r\n\r\n", "", "", true},
		{"NUL in extension", "5;a\x00\r\nhello\r\n0\r\n\r\n", "", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Whole, and one byte at a time: the same result.
			for _, step := range []int{len(tt.in), 1} {
				var ck chunkParser
				var data strings.Builder
				p := []byte(tt.in)
				var err error
				for len(p) > 0 && !ck.done() && err == nil {
					piece := p[:min(step, len(p))]
					var n, ds int
					n, ds, err = ck.next(piece)
					data.Write(piece[ds:n])
					p = p[n:]
				}
				if tt.err {
					if err == nil {
						t.Fatalf("step %d: no error", step)
					}
					continue
				}
				if err != nil || !ck.done() {
					t.Fatalf("step %d: err %v, done %v", step, err, ck.done())
				}
				if data.String() != tt.data || string(p) != tt.rest {
					t.Errorf("step %d: data %q rest %q, want %q %q", step, data.String(), p, tt.data, tt.rest)
				}
			}
		})
	}
}
