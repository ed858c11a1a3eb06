package httpproxy

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"lbd/config"
	"lbd/proxy"
)

var discard = slog.New(slog.DiscardHandler)

// testLog logs to the test output when -v is given with LBD_TEST_LOG=1.
func testLog(t testing.TB) *slog.Logger {
	if os.Getenv("LBD_TEST_LOG") == "" {
		return discard
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// countingListener counts the connections a backend accepts and the bytes
// it receives.
type countingListener struct {
	net.Listener
	accepts atomic.Int64
	bytes   atomic.Int64
}

func (l *countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.accepts.Add(1)
		c = &countingConn{Conn: c, l: l}
	}
	return c, err
}

type countingConn struct {
	net.Conn
	l *countingListener
}

func (c *countingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.l.bytes.Add(int64(n))
	return n, err
}

// backend is a net/http server on loopback that answers with its name and
// records the requests it saw.
type backend struct {
	name string
	ln   *countingListener
	srv  *http.Server
	addr string

	mu   sync.Mutex
	reqs []*http.Request
}

func startBackend(t testing.TB, name string, h http.HandlerFunc) *backend {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b := &backend{name: name, ln: &countingListener{Listener: ln}, addr: ln.Addr().String()}
	if h == nil {
		h = func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("X-Backend", name)
			io.WriteString(w, name)
		}
	}
	b.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b.mu.Lock()
		b.reqs = append(b.reqs, r.Clone(context.Background()))
		b.mu.Unlock()
		h(w, r)
	}), ErrorLog: nil}
	done := make(chan struct{})
	go func() { defer close(done); b.srv.Serve(b.ln) }()
	t.Cleanup(func() {
		b.srv.Close()
		<-done
	})
	return b
}

// stop closes the backend: its port refuses connections from now on.
func (b *backend) stop() { b.srv.Close() }

func (b *backend) requests() []*http.Request {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]*http.Request(nil), b.reqs...)
}

func (b *backend) last(t testing.TB) *http.Request {
	t.Helper()
	rs := b.requests()
	if len(rs) == 0 {
		t.Fatalf("backend %s saw no request", b.name)
	}
	return rs[len(rs)-1]
}

// setup parses an lbd.toml fragment (frontends bind "127.0.0.1:1", which is
// replaced by a free port), builds its pools and starts its first
// frontend. Backend addresses are written as {b0}, {b1}...
func setup(t testing.TB, toml string, backends ...*backend) (*Frontend, proxy.Pools) {
	t.Helper()
	for i, b := range backends {
		toml = strings.ReplaceAll(toml, fmt.Sprintf("{b%d}", i), b.addr)
	}
	cfg, err := config.Parse("test.toml", []byte(toml))
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	pools := proxy.Pools{}
	for _, pc := range cfg.Pools {
		p, err := proxy.NewPool(pc, nil, discard)
		if err != nil {
			t.Fatal(err)
		}
		pools[pc.Name] = p
	}
	fc := cfg.Frontends[0]
	fc.Bind = "127.0.0.1:0"
	f, err := Listen(fc, pools, proxy.NewLocalAffinity(), testLog(t))
	if err != nil {
		t.Fatal(err)
	}
	f.Start()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		f.Close(ctx)
	})
	return f, pools
}

// simple is a frontend with one pool of the given backends.
func simple(t testing.TB, extraPool string, backends ...*backend) (*Frontend, proxy.Pools) {
	t.Helper()
	return setup(t, frontendTOML("app", `header_timeout = "2s"
idle_timeout = "5s"`)+`
[[pool]]
name = "app"
read_timeout = "5s"
connect_timeout = "1s"
`+extraPool+"\n"+backendsTOML(len(backends)), backends...)
}

// backendsTOML is n [[pool.backend]] tables addressed {b0} to {bn-1}.
func backendsTOML(n int) string {
	var bs strings.Builder
	for i := range n {
		fmt.Fprintf(&bs, "  [[pool.backend]]\n  address = \"{b%d}\"\n", i)
	}
	return bs.String()
}

// frontendTOML is an HTTP frontend "web" (on a free port, see setup)
// whose default pool is pool, none when empty, with lines added.
func frontendTOML(pool, lines string) string {
	s := `
[[frontend]]
name = "web"
bind = "127.0.0.1:1"
mode = "http"
`
	if pool != "" {
		s += fmt.Sprintf("default_pool = %q\n", pool)
	}
	return s + lines + "\n"
}

// poolsTOML is a [[pool]] table for each name, pool i with the one
// backend {bi}.
func poolsTOML(names ...string) string {
	var s strings.Builder
	for i, n := range names {
		fmt.Fprintf(&s, "[[pool]]\nname = %q\n  [[pool.backend]]\n  address = \"{b%d}\"\n", n, i)
	}
	return s.String()
}

// appConfig is frontend "web" whose default pool "app" has the one
// backend {b0}, with frontend and pool lines added to the two tables.
func appConfig(frontend, pool string) string {
	return frontendTOML("app", frontend) + `
[[pool]]
name = "app"
` + pool + "\n" + backendsTOML(1)
}

// deadAddr returns a loopback address nothing listens on.
func deadAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// client is an HTTP/1.1 client with keep-alive that talks to f.
func client(f *Frontend) *http.Client {
	return &http.Client{
		Transport: &http.Transport{
			DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
				var d net.Dialer
				return d.DialContext(ctx, "tcp", f.Addr().String())
			},
			MaxIdleConnsPerHost: 8,
			DisableCompression:  true,
		},
		Timeout: 10 * time.Second,
	}
}

// h2cClient is an HTTP/2 client with prior knowledge (h2c) that talks to
// f.
func h2cClient(f *Frontend) *http.Client {
	var p http.Protocols
	p.SetUnencryptedHTTP2(true)
	return &http.Client{
		Transport: &http.Transport{
			Protocols:          &p,
			DisableCompression: true,
			DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
				var d net.Dialer
				return d.DialContext(ctx, "tcp", f.Addr().String())
			},
		},
		Timeout: 10 * time.Second,
	}
}

// get sends a GET and returns the response with its body read. A Host
// in hdr sets the request's host.
func get(t testing.TB, c *http.Client, url string, hdr ...string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest("GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		if strings.EqualFold(hdr[i], "Host") {
			req.Host = hdr[i+1]
			continue
		}
		req.Header.Add(hdr[i], hdr[i+1])
	}
	return do(t, c, req)
}

// post sends a POST of a text/plain body and returns the response with
// its body read.
func post(t testing.TB, c *http.Client, url string, body io.Reader) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest("POST", url, body)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "text/plain")
	return do(t, c, req)
}

// do sends req and returns the response with its body read.
func do(t testing.TB, c *http.Client, req *http.Request) (*http.Response, string) {
	t.Helper()
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatalf("%s %s: reading body: %v", req.Method, req.URL, err)
	}
	return resp, string(body)
}

// raw sends bytes on a new connection and returns the response the proxy
// writes, read until it closes the connection or timeout passes.
func raw(t testing.TB, f *Frontend, req string) (*http.Response, string) {
	t.Helper()
	c := dial(t, f)
	defer c.Close()
	if _, err := io.WriteString(c, req); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("reading response to %q: %v", req, err)
	}
	body, _ := io.ReadAll(resp.Body)
	return resp, string(body)
}

// dial opens a TCP connection to f, with a deadline 10 s away; the caller
// closes it.
func dial(t testing.TB, f *Frontend) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", f.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(10 * time.Second))
	return c
}

// readResponse reads a response from r and returns it with its body.
func readResponse(t testing.TB, r *bufio.Reader) (*http.Response, string) {
	t.Helper()
	resp, err := http.ReadResponse(r, nil)
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("reading body: %v", err)
	}
	return resp, string(body)
}

// isErrorPage reports whether resp is the proxy's own answer with status:
// a request id in X-Request-ID, and the same id in the body.
func isErrorPage(resp *http.Response, body string, status int) bool {
	id := resp.Header.Get("X-Request-ID")
	return resp.StatusCode == status && id != "" && strings.Contains(body, "request id: "+id)
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// goroutines returns the number of goroutines, for leak checks.
func goroutines() int { return runtime.NumGoroutine() }

// scripted is a raw TCP backend that runs fn on every connection, for
// responses net/http would not send.
type scripted struct {
	ln      net.Listener
	addr    string
	accepts atomic.Int64
	closed  atomic.Int64 // connections fn returned from and the backend closed
}

func startScripted(t testing.TB, fn func(c net.Conn, r *bufio.Reader)) *scripted {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &scripted{ln: ln, addr: ln.Addr().String()}
	var wg sync.WaitGroup
	var mu sync.Mutex
	conns := map[net.Conn]bool{}
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.accepts.Add(1)
			mu.Lock()
			conns[c] = true
			mu.Unlock()
			wg.Go(func() {
				fn(c, bufio.NewReader(c))
				c.Close()
				s.closed.Add(1)
			})
		}
	})
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return s
}

// readHead reads a request head from r and returns it.
func readHead(r *bufio.Reader) (string, error) {
	var sb strings.Builder
	for {
		line, err := r.ReadString('\n')
		sb.WriteString(line)
		if err != nil {
			return sb.String(), err
		}
		if line == "\r\n" {
			return sb.String(), nil
		}
	}
}

func newReader(c net.Conn) *bufio.Reader { return bufio.NewReader(c) }
