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
	} {
		if _, err := NewProber(tc.h); err == nil || err.Error() != tc.want {
			t.Errorf("NewProber(%+v) error = %v, want %q", tc.h, err, tc.want)
		}
	}
}
