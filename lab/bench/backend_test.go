package bench

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"lbd/config"
)

// TestHTTPBackend sends pipelined requests the way proxies and wrk do and
// checks every answer: body size by path, keep-alive, 404, Connection:
// close and a discarded request body.
func TestHTTPBackend(t *testing.T) {
	s, err := serve("127.0.0.1:0", newHTTPBackend([]int{13, 65536}).handle)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	c, err := net.Dial("tcp", s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	req := "GET /13 HTTP/1.1\r\nHost: a\r\n\r\n" +
		"GET /65536?x=1 HTTP/1.1\r\nhost: a\r\nX-Forwarded-For: 127.0.0.1\r\n\r\n" +
		"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello" +
		"GET /13 HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"
	if _, err := io.WriteString(c, req); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(c)
	type answer struct {
		Status, Body int
		Close        bool
	}
	var got []answer
	for range 4 {
		resp, err := readResponse(br)
		if err != nil {
			t.Fatalf("after %d responses: %v", len(got), err)
		}
		got = append(got, resp)
	}
	want := []answer{{200, 13, false}, {200, 65536, false}, {200, 13, false}, {200, 13, true}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("responses (-want +got):\n%s", diff)
	}
	if n, err := br.Read(make([]byte, 1)); err != io.EOF {
		t.Errorf("after Connection: close, read %d bytes, %v; want EOF", n, err)
	}

	// An unknown path is a 404 and a close.
	c2, err := net.Dial("tcp", s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	c2.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(c2, "GET /nope HTTP/1.1\r\n\r\n")
	if resp, err := readResponse(bufio.NewReader(c2)); err != nil || resp != (answer{404, 0, true}) {
		t.Errorf("GET /nope = %+v, %v; want a 404 with Connection: close", resp, err)
	}
}

// readResponse reads a response with a Content-Length body.
func readResponse(br *bufio.Reader) (a struct {
	Status, Body int
	Close        bool
}, err error) {
	line, err := br.ReadString('\n')
	if err != nil {
		return a, err
	}
	if _, err := fmt.Sscanf(line, "HTTP/1.1 %d", &a.Status); err != nil {
		return a, fmt.Errorf("status line %q: %w", line, err)
	}
	length := -1
	for {
		h, err := br.ReadString('\n')
		if err != nil {
			return a, err
		}
		if h == "\r\n" {
			break
		}
		fmt.Sscanf(h, "Content-Length: %d", &length)
		if strings.EqualFold(h, "Connection: close\r\n") {
			a.Close = true
		}
	}
	if length < 0 {
		return a, fmt.Errorf("no Content-Length")
	}
	body := make([]byte, length)
	if _, err := io.ReadFull(br, body); err != nil {
		return a, err
	}
	a.Body = len(body)
	return a, nil
}

// TestTCPBackends checks the bulk sink's confirmation and the echo.
func TestTCPBackends(t *testing.T) {
	sink, err := serve("127.0.0.1:0", handleSink)
	if err != nil {
		t.Fatal(err)
	}
	defer sink.Close()
	echo, err := serve("127.0.0.1:0", handleEcho)
	if err != nil {
		t.Fatal(err)
	}
	defer echo.Close()
	if _, err := bulkOnce(t.Context(), sink.Addr(), 3<<20+7); err != nil {
		t.Errorf("bulkOnce: %v", err)
	}
	res := connRate(t.Context(), echo.Addr(), 4, 200*time.Millisecond)
	if res.ok == 0 || res.failed != 0 {
		t.Errorf("connRate: %d ok, %d failed (%v); want some and no failure", res.ok, res.failed, res.firstErr)
	}
	conns, err := openIdle(t.Context(), echo.Addr(), 100)
	for _, c := range conns {
		c.Close()
	}
	if err != nil || len(conns) != 100 {
		t.Errorf("openIdle: %d connections, %v; want 100", len(conns), err)
	}
}

// TestLBDConfig loads the configuration the benchmark writes for lbd with
// lbd's own loader.
func TestLBDConfig(t *testing.T) {
	dir := t.TempDir()
	routes := []route{
		{name: "bulk", mode: "tcp", backends: []string{"127.0.0.1:9001"}},
		{name: "http", mode: "http", backends: []string{"127.0.0.1:9002", "127.0.0.1:9003"}},
	}
	addrs := map[string]string{"bulk": "127.0.0.1:8001", "http": "127.0.0.1:8002"}
	path := filepath.Join(dir, "lbd.toml")
	if err := os.WriteFile(path, []byte(lbdConfig(dir, routes, addrs)), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatalf("config.Load: %v", err)
	}
	type fe struct{ Name, Bind, Mode, Pool string }
	var gotFE []fe
	for _, f := range cfg.Frontends {
		gotFE = append(gotFE, fe{f.Name, f.Bind, f.Mode, f.DefaultPool})
		if f.MaxConnections < 10000 {
			t.Errorf("frontend %s: max_connections %d cannot hold the mem part's idle connections", f.Name, f.MaxConnections)
		}
	}
	wantFE := []fe{{"bulk", "127.0.0.1:8001", "tcp", "bulk"}, {"http", "127.0.0.1:8002", "http", "http"}}
	if diff := cmp.Diff(wantFE, gotFE); diff != "" {
		t.Errorf("frontends (-want +got):\n%s", diff)
	}
	gotBE := map[string][]string{}
	for _, p := range cfg.Pools {
		for _, b := range p.Backends {
			gotBE[p.Name] = append(gotBE[p.Name], b.Address)
		}
	}
	wantBE := map[string][]string{"bulk": {"127.0.0.1:9001"}, "http": {"127.0.0.1:9002", "127.0.0.1:9003"}}
	if diff := cmp.Diff(wantBE, gotBE); diff != "" {
		t.Errorf("pool backends (-want +got):\n%s", diff)
	}
	if !bytes.Contains([]byte(cfg.Node.AdminSocket), []byte(dir)) {
		t.Errorf("admin socket %q is outside the temporary directory %s", cfg.Node.AdminSocket, dir)
	}
}
