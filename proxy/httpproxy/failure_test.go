package httpproxy

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"lbd/proxy/balance"
)

func TestRetryOnDeadBackend(t *testing.T) {
	good := startBackend(t, "good", nil)
	dead := &backend{name: "dead", addr: deadAddr(t)}
	f, pools := simple(t, "retries = 1", good, dead)
	c := client(f)
	for i := 0; i < 20; i++ {
		if resp, body := get(t, c, "http://x/"); resp.StatusCode != 200 || body != "good" {
			t.Fatalf("request %d: %d %q", i, resp.StatusCode, body)
		}
	}
	if n := pools["app"].Backend(dead.addr).Stats().Failures; n == 0 {
		t.Error("the dead backend was never tried: the test proves nothing")
	}
}

// resetter is a backend that reads a request and closes without answering.
func resetter(t *testing.T) *scripted {
	return startScripted(t, func(c net.Conn, r *bufio.Reader) {
		readHead(r)
		c.(*net.TCPConn).SetLinger(0) // RST
	})
}

func TestRetryOnResetBeforeResponse(t *testing.T) {
	good := startBackend(t, "good", nil)
	bad := resetter(t)
	f, _ := simple(t, "retries = 1", good, &backend{addr: bad.addr})
	c := client(f)
	for i := 0; i < 10; i++ {
		if resp, body := get(t, c, "http://x/"); resp.StatusCode != 200 || body != "good" {
			t.Fatalf("GET %d: %d %q", i, resp.StatusCode, body)
		}
	}
	if bad.accepts.Load() == 0 {
		t.Fatal("the resetting backend was never tried: the test proves nothing")
	}
	// POST is not idempotent: it must not be sent twice.
	codes := map[int]int{}
	for i := 0; i < 4; i++ {
		resp, _ := post(t, c, "http://x/", strings.NewReader("data"))
		codes[resp.StatusCode]++
	}
	posts := 0
	for _, r := range good.requests() {
		if r.Method == "POST" {
			posts++
		}
	}
	if codes[502] == 0 || posts != codes[200] {
		t.Errorf("POST statuses %v, good backend saw %d POSTs; want some 502 and no retried POST", codes, posts)
	}
}

// TestStaleKeepAlive: a backend that closes every connection after one
// response (while saying keep-alive) must not fail requests that arrive
// on the pooled, now closed, connection: a GET is retried on a fresh
// connection; a POST, which a proxy must not retry (RFC 9110 §9.2.2), is
// not sent on a pooled connection whose close has arrived. (A close still
// on the wire when the POST leaves cannot be seen; HTTP/1.1 has no cure
// for that race, so the test waits for the backend's close first.)
func TestStaleKeepAlive(t *testing.T) {
	s := startScripted(t, func(c net.Conn, r *bufio.Reader) {
		head, err := readHead(r)
		if err != nil {
			return
		}
		if strings.HasPrefix(head, "POST") {
			io.CopyN(io.Discard, r, 4)
		}
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
	})
	f, _ := simple(t, "", &backend{addr: s.addr})
	c := client(f)
	for i := 0; i < 10; i++ {
		if resp, body := get(t, c, "http://x/"); resp.StatusCode != 200 || body != "ok" {
			t.Fatalf("GET %d: %d %q", i, resp.StatusCode, body)
		}
		waitFor(t, "the backend's close", func() bool { return s.closed.Load() == s.accepts.Load() })
		if resp, _ := post(t, c, "http://x/", strings.NewReader("data")); resp.StatusCode != 200 {
			t.Fatalf("POST %d: %d", i, resp.StatusCode)
		}
	}
}

func TestErrorStatuses(t *testing.T) {
	slow := startBackend(t, "slow", func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(5 * time.Second):
		}
	})
	good := startBackend(t, "good", nil)
	dead := deadAddr(t)
	f, pools := setup(t, frontendTOML("", `route = [
  {path_prefix = "/dead", pool = "dead"},
  {path_prefix = "/slow", pool = "slow"},
  {path_prefix = "/off", pool = "off"},
]`)+`
[[pool]]
name = "dead"
retries = 2
  [[pool.backend]]
  address = "`+dead+`"
[[pool]]
name = "slow"
read_timeout = "200ms"
  [[pool.backend]]
  address = "{b0}"
[[pool]]
name = "off"
  [[pool.backend]]
  address = "{b1}"
`, slow, good)
	if err := pools["off"].SetState(good.addr, balance.StateDisabled); err != nil {
		t.Fatal(err)
	}
	c := client(f)
	for _, tt := range []struct {
		path   string
		status int
	}{{"/dead", 502}, {"/slow", 504}, {"/off", 503}} {
		t.Run(tt.path, func(t *testing.T) {
			resp, body := get(t, c, "http://x"+tt.path)
			if !isErrorPage(resp, body, tt.status) {
				t.Errorf("got %d, id %q, body %q; want %d with the request id", resp.StatusCode, resp.Header.Get("X-Request-ID"), body, tt.status)
			}
		})
	}
	if n := f.Stats().NoBackend; n != 1 {
		t.Errorf("NoBackend = %d, want 1", n)
	}
	if n := len(good.requests()); n != 0 {
		t.Errorf("disabled backend got %d requests", n)
	}
}

func timeoutFrontend(t *testing.T, b *backend) *Frontend {
	f, _ := setup(t, appConfig(`header_timeout = "300ms"
idle_timeout = "300ms"`, ""), b)
	return f
}

// TestHeaderTimeout is the slowloris case: a head that does not complete
// within header_timeout is answered 408 and the connection closed.
func TestHeaderTimeout(t *testing.T) {
	b := startBackend(t, "b", nil)
	f := timeoutFrontend(t, b)
	c := dial(t, f)
	defer c.Close()
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: h\r\nX-Slow: ")
	all, err := io.ReadAll(c) // the proxy answers, then closes
	if err != nil {
		t.Fatal(err)
	}
	resp, body := readResponse(t, bufio.NewReader(strings.NewReader(string(all))))
	if !isErrorPage(resp, body, 408) {
		t.Errorf("got %d %q, want 408 with a request id", resp.StatusCode, body)
	}
	if b.ln.accepts.Load() != 0 {
		t.Error("the backend was contacted")
	}
}

// TestIdleTimeout: a kept connection with no request is closed after
// idle_timeout; one that never sent a byte is closed silently.
func TestIdleTimeout(t *testing.T) {
	b := startBackend(t, "b", nil)
	f := timeoutFrontend(t, b)
	for _, first := range []string{"GET / HTTP/1.1\r\nHost: h\r\n\r\n", ""} {
		c := dial(t, f)
		io.WriteString(c, first)
		br := bufio.NewReader(c)
		if first != "" {
			readResponse(t, br)
		}
		rest, err := io.ReadAll(br)
		if err != nil || len(rest) != 0 {
			t.Errorf("after %q: read %q, %v; want the proxy to close silently", first, rest, err)
		}
		c.Close()
	}
}

// TestErrorWithUnreadBody: a request refused before its body was read
// leaves the rest of the body on the connection, which must be closed
// (else the body would be read as the next request).
func TestErrorWithUnreadBody(t *testing.T) {
	b := startBackend(t, "b", nil)
	f, pools := simple(t, "", b)
	if err := pools["app"].SetState(b.addr, balance.StateDisabled); err != nil {
		t.Fatal(err)
	}
	resp, body := raw(t, f, "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 100000\r\n\r\n"+strings.Repeat("x", 1000))
	if !isErrorPage(resp, body, 503) || !resp.Close {
		t.Errorf("got %d close=%v %q, want 503 closing the connection", resp.StatusCode, resp.Close, body)
	}
	// Without a body the connection is kept.
	resp, _ = raw(t, f, "GET / HTTP/1.1\r\nHost: h\r\n\r\n")
	if resp.StatusCode != 503 || resp.Close {
		t.Errorf("got %d close=%v, want 503 keeping the connection", resp.StatusCode, resp.Close)
	}
}
