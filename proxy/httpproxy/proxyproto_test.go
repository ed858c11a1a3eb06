package httpproxy

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"lbd/proxy"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// proxyListener is a backend listener that reads the PROXY header
// (version 1 or 2) every connection must start with, as a backend
// behind HAProxy's send-proxy does.
type proxyListener struct {
	net.Listener
	accepts atomic.Int64
	open    atomic.Int64
}

type proxiedConn struct {
	net.Conn
	src  string // the client address the header gives
	l    *proxyListener
	once sync.Once
}

func (c *proxiedConn) Close() error {
	c.once.Do(func() { c.l.open.Add(-1) })
	return c.Conn.Close()
}

func (l *proxyListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		src, err := readProxyHeader(c)
		c.SetReadDeadline(time.Time{})
		if err != nil {
			c.Close() // a connection without the header is refused
			continue
		}
		l.accepts.Add(1)
		l.open.Add(1)
		return &proxiedConn{Conn: c, src: src, l: l}, nil
	}
}

// readProxyHeader reads a PROXY header byte by byte (nothing after it)
// and returns the source address it gives.
func readProxyHeader(r io.Reader) (string, error) {
	var sig [12]byte
	if _, err := io.ReadFull(r, sig[:6]); err != nil {
		return "", err
	}
	if string(sig[:6]) == "PROXY " {
		var line []byte
		var b [1]byte
		for !bytes.HasSuffix(line, []byte("\r\n")) {
			if _, err := r.Read(b[:]); err != nil {
				return "", err
			}
			if line = append(line, b[0]); len(line) > 107 {
				return "", errors.New("v1 line too long")
			}
		}
		f := strings.Fields(string(line))
		if len(f) != 5 || (f[0] != "TCP4" && f[0] != "TCP6") {
			return "", fmt.Errorf("bad v1 header %q", line)
		}
		return "v1 " + net.JoinHostPort(f[1], f[3]) + " -> " + net.JoinHostPort(f[2], f[4]), nil
	}
	if _, err := io.ReadFull(r, sig[6:]); err != nil {
		return "", err
	}
	if string(sig[:]) != v2Sig {
		return "", errors.New("no PROXY header")
	}
	var hdr [4]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return "", err
	}
	body := make([]byte, binary.BigEndian.Uint16(hdr[2:]))
	if _, err := io.ReadFull(r, body); err != nil {
		return "", err
	}
	if hdr[0] != 0x21 || hdr[1] != 0x11 || len(body) != 12 {
		return "", fmt.Errorf("v2 header %x %x", hdr, body)
	}
	src := netip.AddrPortFrom(netip.AddrFrom4([4]byte(body[0:4])), binary.BigEndian.Uint16(body[8:]))
	dst := netip.AddrPortFrom(netip.AddrFrom4([4]byte(body[4:8])), binary.BigEndian.Uint16(body[10:]))
	return "v2 " + src.String() + " -> " + dst.String(), nil
}

type srcKey struct{}

// startProxiedBackend serves HTTP/1.1 (or h2c) behind a proxyListener;
// each answer is the source address of its connection's PROXY header.
func startProxiedBackend(t testing.TB, h2c bool) (*backend, *proxyListener) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	pl := &proxyListener{Listener: ln}
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, r.Context().Value(srcKey{}).(string))
		}),
		ConnContext: func(ctx context.Context, c net.Conn) context.Context {
			return context.WithValue(ctx, srcKey{}, c.(*proxiedConn).src)
		},
	}
	if h2c {
		var p http.Protocols
		p.SetUnencryptedHTTP2(true)
		srv.Protocols = &p
	}
	done := make(chan struct{})
	go func() { defer close(done); srv.Serve(pl) }()
	t.Cleanup(func() { srv.Close(); <-done })
	return &backend{addr: ln.Addr().String()}, pl
}

// rawKeepAlive is an HTTP/1.1 client on one connection whose address
// the test knows.
type rawKeepAlive struct {
	c net.Conn
	r *bufio.Reader
}

func dialRaw(t testing.TB, f *Frontend) *rawKeepAlive {
	t.Helper()
	c := dial(t, f)
	t.Cleanup(func() { c.Close() })
	return &rawKeepAlive{c: c, r: bufio.NewReader(c)}
}

func (k *rawKeepAlive) get(t testing.TB, path string) string {
	t.Helper()
	if _, err := io.WriteString(k.c, "GET "+path+" HTTP/1.1\r\nHost: app.test\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	resp, body := readResponse(t, k.r)
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %d %q", path, resp.StatusCode, body)
	}
	return body
}

// TestProxyProtocolHTTP: with proxy_protocol, each client connection gets
// backend connections of its own whose PROXY header names it; they serve
// its later requests, never another client's.
func TestProxyProtocolHTTP(t *testing.T) {
	for _, tc := range []struct {
		version string
		h2c     bool
	}{{"v1", false}, {"v2", false}, {"v1", true}, {"v2", true}} {
		name := tc.version
		if tc.h2c {
			name += "/h2c"
		}
		t.Run(name, func(t *testing.T) {
			b, pl := startProxiedBackend(t, tc.h2c)
			protocol := ""
			if tc.h2c {
				protocol = `protocol = "h2c"`
			}
			f, _ := setup(t, appConfig(`proxy_protocol = "`+tc.version+`"`, protocol), b)
			want := func(k *rawKeepAlive) string {
				return tc.version + " " + k.c.LocalAddr().String() + " -> " + f.Addr().String()
			}
			a, bb := dialRaw(t, f), dialRaw(t, f)
			var got, wants []string
			for _, step := range []*rawKeepAlive{a, a, bb, a, bb} {
				got = append(got, step.get(t, "/"))
				wants = append(wants, want(step))
			}
			if diff := cmp.Diff(wants, got); diff != "" {
				t.Errorf("PROXY source of each request (-want +got):\n%s", diff)
			}
			if n := pl.accepts.Load(); n != 2 {
				t.Errorf("backend accepted %d connections for 2 clients, want 2", n)
			}
			// The client leaves: its backend connection closes with it.
			a.c.Close()
			waitFor(t, "the first client's backend connection to close", func() bool { return pl.open.Load() == 1 })
			if got := bb.get(t, "/"); got != want(bb) {
				t.Errorf("second client after the first left: %q", got)
			}
		})
	}
}

// TestProxyProtocolHTTP2Client: the streams of an HTTP/2 client share
// the client's own backend connections.
func TestProxyProtocolHTTP2Client(t *testing.T) {
	b, pl := startProxiedBackend(t, false)
	f, _ := setup(t, appConfig(`proxy_protocol = "v2"`, ""), b)
	var local atomic.Value
	c := h2cClient(f)
	defer c.CloseIdleConnections()
	c.Transport.(*http.Transport).DialContext = func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		conn, err := d.DialContext(ctx, "tcp", f.Addr().String())
		if err == nil {
			local.Store(conn.LocalAddr().String())
		}
		return conn, err
	}
	for i := 0; i < 4; i++ {
		_, body := get(t, c, "http://app.test/")
		if want := "v2 " + local.Load().(string) + " -> " + f.Addr().String(); body != want {
			t.Errorf("request %d: %q, want %q", i, body, want)
		}
	}
	if n := pl.accepts.Load(); n != 1 {
		t.Errorf("4 sequential streams opened %d backend connections, want 1", n)
	}
}

func TestAppendProxyHeader(t *testing.T) {
	ap := netip.MustParseAddrPort
	cases := []struct {
		version  string
		src, dst netip.AddrPort
		want     string
	}{
		{"v1", ap("198.18.0.1:40000"), ap("198.18.0.100:80"), "PROXY TCP4 198.18.0.1 198.18.0.100 40000 80\r\n"},
		{"v1", ap("[2001:db8::1]:40000"), ap("[2001:db8::100]:443"), "PROXY TCP6 2001:db8::1 2001:db8::100 40000 443\r\n"},
		{"v1", ap("[::ffff:198.18.0.1]:1"), ap("198.18.0.100:80"), "PROXY TCP4 198.18.0.1 198.18.0.100 1 80\r\n"},
		{"v1", ap("[2001:db8::1]:1"), ap("198.18.0.100:80"), "PROXY UNKNOWN\r\n"},
		{"v2", ap("198.18.0.1:258"), ap("198.18.0.100:80"),
			v2Sig + "\x21\x11\x00\x0c\xc6\x12\x00\x01\xc6\x12\x00\x64\x01\x02\x00\x50"},
		{"v2", netip.AddrPort{}, ap("198.18.0.100:80"), v2Sig + "\x20\x00\x00\x00"},
	}
	for _, tc := range cases {
		hdr, err := proxy.AppendProxyHeader(nil, tc.version, tc.src, tc.dst)
		if got := string(hdr); err != nil || got != tc.want {
			t.Errorf("%s %v %v: %q (%v), want %q", tc.version, tc.src, tc.dst, got, err, tc.want)
		}
	}
}

// v2Sig is the 12-byte signature that starts a PROXY version 2 header.
const v2Sig = "\r\n\r\n\x00\r\nQUIT\n"
