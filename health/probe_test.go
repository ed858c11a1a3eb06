package health

import (
	"context"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"lbd/config"
)

// seen is what a test HTTP server received.
type seen struct {
	Method, Path, Host, UserAgent string
}

func TestHTTPProbe(t *testing.T) {
	var mu sync.Mutex
	var last seen
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		last = seen{r.Method, r.URL.Path, r.Host, r.UserAgent()}
		mu.Unlock()
		switch r.URL.Path {
		case "/slow":
			<-r.Context().Done()
			return
		case "/redirect":
			http.Redirect(w, r, "/elsewhere", http.StatusFound)
			return
		}
		var code int
		if _, err := fmt.Sscanf(r.URL.Path, "/%d", &code); err != nil {
			code = 200
		}
		w.WriteHeader(code)
		io.WriteString(w, "status: ready\n")
	}))
	defer srv.Close()
	addr := srv.Listener.Addr().String()

	for _, tc := range []struct {
		name   string
		h      config.Health // Type, Timeout filled in
		want   Result
		wantRq seen
	}{
		{"200 in 2xx", config.Health{Path: "/200", ExpectStatus: "2xx"},
			Result{true, "HTTP 200"}, seen{"GET", "/200", addr, "lbd-health"}},
		{"503 not in 2xx", config.Health{Path: "/503", ExpectStatus: "2xx"},
			Result{false, "HTTP 503"}, seen{"GET", "/503", addr, "lbd-health"}},
		{"302 in 200-399, not followed", config.Health{Path: "/redirect", ExpectStatus: "200-399"},
			Result{true, "HTTP 302"}, seen{"GET", "/redirect", addr, "lbd-health"}},
		{"204 in list", config.Health{Path: "/204", ExpectStatus: "200,204"},
			Result{true, "HTTP 204"}, seen{"GET", "/204", addr, "lbd-health"}},
		{"201 not in list", config.Health{Path: "/201", ExpectStatus: "200,204"},
			Result{false, "HTTP 201"}, seen{"GET", "/201", addr, "lbd-health"}},
		{"body substring found", config.Health{Path: "/", ExpectStatus: "2xx", ExpectBody: "ready"},
			Result{true, "HTTP 200"}, seen{"GET", "/", addr, "lbd-health"}},
		{"body substring missing", config.Health{Path: "/", ExpectStatus: "2xx", ExpectBody: "green"},
			Result{false, `HTTP 200, body lacks "green"`}, seen{"GET", "/", addr, "lbd-health"}},
		{"host header and method", config.Health{Method: "HEAD", Path: "/health", Host: "app.example", ExpectStatus: "2xx"},
			Result{true, "HTTP 200"}, seen{"HEAD", "/health", "app.example", "lbd-health"}},
		{"POST", config.Health{Method: "POST", Path: "/200", ExpectStatus: "200"},
			Result{true, "HTTP 200"}, seen{"POST", "/200", addr, "lbd-health"}},
		{"timeout", config.Health{Path: "/slow", ExpectStatus: "2xx", Timeout: dur(100 * time.Millisecond)},
			Result{false, "timeout after 100ms"}, seen{"GET", "/slow", addr, "lbd-health"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := tc.h
			h.Type = "http"
			if h.Timeout == 0 {
				h.Timeout = dur(5 * time.Second)
			}
			pr, err := NewProber(h)
			if err != nil {
				t.Fatal(err)
			}
			got := pr.Probe(probeCtx(t, h), addr)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("Probe (-want +got):\n%s", diff)
			}
			mu.Lock()
			rq := last
			mu.Unlock()
			if diff := cmp.Diff(tc.wantRq, rq); diff != "" {
				t.Errorf("request the server saw (-want +got):\n%s", diff)
			}
		})
	}
}

// probeCtx gives a probe the check's timeout, as the Pool does.
func probeCtx(t *testing.T, h config.Health) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), h.Timeout.D())
	t.Cleanup(cancel)
	return ctx
}

// closedPort returns a loopback address nobody listens on.
func closedPort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

func TestTCPAndTLSProbes(t *testing.T) {
	plain, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	go func() { // accepts and closes: a backend that does not speak TLS
		for {
			c, err := plain.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	tlsSrv := httptest.NewUnstartedServer(http.NotFoundHandler())
	tlsSrv.Config.ErrorLog = log.New(io.Discard, "", 0) // the check hangs up after the handshake
	tlsSrv.StartTLS()
	defer tlsSrv.Close()
	closed := closedPort(t)
	plain6, err := net.Listen("tcp", "[::1]:0")
	if err != nil {
		t.Fatalf("IPv6 loopback: %v", err)
	}
	defer plain6.Close()
	_, port, _ := net.SplitHostPort(plain.Addr().String())

	for _, tc := range []struct {
		name, typ, addr string
		wantOK          bool
		wantText        string // prefix
	}{
		{"tcp open", "tcp", plain.Addr().String(), true, "connected"},
		{"tcp closed port", "tcp", closed, false, "connect: connection refused"},
		{"tcp IPv6", "tcp", plain6.Addr().String(), true, "connected"},
		{"tcp host name", "tcp", net.JoinHostPort("localhost", port), true, "connected"},
		{"tls handshake (certificate not verified)", "tls", tlsSrv.Listener.Addr().String(), true, "TLS 1.3"},
		{"tls against a plain server", "tls", plain.Addr().String(), false, "TLS handshake: "},
		{"tls closed port", "tls", closed, false, "connect: connection refused"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := config.Health{Type: tc.typ, Timeout: dur(5 * time.Second)}
			pr, err := NewProber(h)
			if err != nil {
				t.Fatal(err)
			}
			got := pr.Probe(probeCtx(t, h), tc.addr)
			if got.OK != tc.wantOK || !strings.HasPrefix(got.Text, tc.wantText) {
				t.Errorf("Probe(%s) = %+v, want OK %v and text starting %q", tc.addr, got, tc.wantOK, tc.wantText)
			}
		})
	}
}

func TestNewProberRejects(t *testing.T) {
	for _, tc := range []struct {
		h    config.Health
		want string
	}{
		{config.Health{Type: "icmp", Timeout: dur(time.Second)}, `health: unknown check type "icmp" (want http, tcp, tls or none)`},
		{config.Health{Type: "tcp"}, "health: timeout 0s is not positive"},
		{config.Health{Type: "http", Timeout: dur(time.Second), ExpectStatus: "2xx", Path: "health"}, `health: path "health" does not start with "/"`},
		{config.Health{Type: "http", Timeout: dur(time.Second), ExpectStatus: "600"}, `health: expect_status "600": "600" is not a status code in 100..599 or a class like "2xx"`},
		{config.Health{Type: "http", Timeout: dur(time.Second), ExpectStatus: "2xx", Path: "/a b"}, `health: path "/a b" has a space or a control character`},
		{config.Health{Type: "http", Timeout: dur(time.Second), ExpectStatus: "2xx", Path: "/\r\nX: y"}, `health: path "/\r\nX: y" has a space or a control character`},
		{config.Health{Type: "http", Timeout: dur(time.Second), ExpectStatus: "2xx", Method: "GET /"}, `health: method "GET /" is not an HTTP method`},
		{config.Health{Type: "http", Timeout: dur(time.Second), ExpectStatus: "2xx", Host: "a\nb"}, `health: host "a\nb" has a space or a control character`},
	} {
		if _, err := NewProber(tc.h); err == nil || err.Error() != tc.want {
			t.Errorf("NewProber(%+v) error = %v, want %q", tc.h, err, tc.want)
		}
	}
}

// rawHTTPServer answers each connection with reply after reading the
// request head, and hands the request it read to the test.
func rawHTTPServer(t *testing.T, reply string) (addr string, requests <-chan string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	reqs := make(chan string, 16)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				_ = c.SetDeadline(time.Now().Add(10 * time.Second))
				var req []byte
				buf := make([]byte, 4096)
				for !strings.Contains(string(req), "\r\n\r\n") {
					n, err := c.Read(buf)
					if err != nil {
						return
					}
					req = append(req, buf[:n]...)
				}
				select {
				case reqs <- string(req):
				default:
				}
				_, _ = io.WriteString(c, reply)
			}()
		}
	}()
	return ln.Addr().String(), reqs
}

// TestHTTPProbeOnTheWire checks the exact request the http check sends
// and how it reads responses that net/http's client would also read.
func TestHTTPProbeOnTheWire(t *testing.T) {
	bigHead := "HTTP/1.1 200 OK\r\nX-Big: " + strings.Repeat("a", 70<<10) + "\r\n\r\n"
	for _, tc := range []struct {
		name     string
		h        config.Health // Type, Timeout and ExpectStatus filled in
		reply    string
		hostname bool // probe "localhost:port", through net.Dialer
		wantReq  string
		want     Result
	}{
		{"GET", config.Health{Path: "/health"}, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", false,
			"GET /health HTTP/1.1\r\nHost: ADDR\r\nUser-Agent: lbd-health\r\nConnection: close\r\n\r\n", Result{true, "HTTP 200"}},
		{"POST with a host", config.Health{Method: "POST", Path: "/up?x=1", Host: "app.example"}, "HTTP/1.0 204 No Content\r\n\r\n", false,
			"POST /up?x=1 HTTP/1.1\r\nHost: app.example\r\nUser-Agent: lbd-health\r\nConnection: close\r\nContent-Length: 0\r\n\r\n", Result{true, "HTTP 204"}},
		{"interim 100 and 103 skipped", config.Health{Path: "/"}, "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 503 Busy\r\nContent-Length: 0\r\n\r\n", false,
			"", Result{false, "HTTP 503"}},
		{"chunked body searched", config.Health{Path: "/", ExpectBody: "ready"}, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nrea\r\n2\r\ndy\r\n0\r\n\r\n", false,
			"", Result{true, "HTTP 200"}},
		{"body until close", config.Health{Path: "/", ExpectBody: "green"}, "HTTP/1.1 200 OK\r\n\r\nstatus: red\n", false,
			"", Result{false, `HTTP 200, body lacks "green"`}},
		{"HEAD has no body", config.Health{Method: "HEAD", Path: "/"}, "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n", false,
			"", Result{true, "HTTP 200"}},
		{"head over 64 KiB", config.Health{Path: "/"}, bigHead, false, "", Result{false, "response head over 64 KiB"}},
		{"not HTTP", config.Health{Path: "/"}, "SSH-2.0-OpenSSH_9.2\r\n\r\n", false, "", Result{false, `malformed HTTP response "SSH-2.0-OpenSSH_9.2"`}},
		{"host name", config.Health{Path: "/"}, "HTTP/1.1 200 OK\r\n\r\n", true,
			"GET / HTTP/1.1\r\nHost: HOSTPORT\r\nUser-Agent: lbd-health\r\nConnection: close\r\n\r\n", Result{true, "HTTP 200"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr, reqs := rawHTTPServer(t, tc.reply)
			if tc.hostname {
				_, port, _ := net.SplitHostPort(addr)
				addr = net.JoinHostPort("localhost", port)
			}
			h := tc.h
			h.Type, h.Timeout, h.ExpectStatus = "http", dur(5*time.Second), "2xx"
			pr, err := NewProber(h)
			if err != nil {
				t.Fatal(err)
			}
			got := pr.Probe(probeCtx(t, h), addr)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("Probe (-want +got):\n%s", diff)
			}
			if tc.wantReq == "" {
				return
			}
			want := strings.NewReplacer("ADDR", addr, "HOSTPORT", addr).Replace(tc.wantReq)
			select {
			case req := <-reqs:
				if diff := cmp.Diff(want, req); diff != "" {
					t.Errorf("request (-want +got):\n%s", diff)
				}
			case <-time.After(5 * time.Second):
				t.Error("the server saw no request")
			}
		})
	}
}
