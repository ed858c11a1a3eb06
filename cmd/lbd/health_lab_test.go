package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"lbd/admin"
	"lbd/lab"
)

const httpConfig = `
[node]
name = "lb1"
admin_socket = "%[1]s/lbd.sock"
state_dir = "%[1]s/state"

[[frontend]]
name = "web"
bind = "198.18.0.11:80"
mode = "http"
default_pool = "app"

[[pool]]
name = "app"
algorithm = "round_robin"
  [pool.health]
  type = "http"
  path = "/health"
  interval = "200ms"
  timeout = "100ms"
  fall = 2
  rise = 2
  [[pool.backend]]
  address = "198.18.0.21:8080"
  [[pool.backend]]
  address = "198.18.0.22:8080"
`

// httpBackend serves "/" with its name and "/health" with 200; it can be
// stopped and started again.
type httpBackend struct {
	h    *lab.Host
	mu   sync.Mutex
	srv  *http.Server
	hits map[string]int
}

func (b *httpBackend) start(t *testing.T) {
	ln, err := b.h.Listen("tcp", b.h.IPv4.String()+":8080")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b.mu.Lock()
		b.hits[r.URL.Path]++
		b.mu.Unlock()
		io.WriteString(w, b.h.Name+"\n")
	})}
	b.mu.Lock()
	b.srv = srv
	b.mu.Unlock()
	go srv.Serve(ln)
}

func (b *httpBackend) stop() {
	b.mu.Lock()
	srv := b.srv
	b.mu.Unlock()
	srv.Close()
}

// TestHTTPAndHealthInLab: lbd proxies HTTP to two backends; a killed
// backend leaves rotation after fall × interval and returns after rise ×
// interval; lbctl status shows the health state.
func TestHTTPAndHealthInLab(t *testing.T) {
	lbdBin, lbctlBin := binaries(t)
	l := lab.New(t)
	lb := l.AddHostAddr("lb1", 11)
	client := l.AddHostAddr("client", 50)
	var bes []*httpBackend
	for i := 0; i < 2; i++ {
		b := &httpBackend{h: l.AddHostAddr(fmt.Sprintf("be%d", i+1), 21+i), hits: map[string]int{}}
		b.start(t)
		t.Cleanup(b.stop)
		bes = append(bes, b)
	}
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "lbd.toml"), []byte(fmt.Sprintf(httpConfig, dir)), 0o644)
	proc, err := lb.Start(lbdBin, "-config", filepath.Join(dir, "lbd.toml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := proc.WaitOutput("lbd started", 30*time.Second); err != nil {
		t.Fatal(err)
	}
	// The client's connections are made inside its namespace: an
	// http.Transport dials from goroutines of its own, so it gets the
	// namespace's Dial, never the root namespace's.
	hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		DisableKeepAlives: true,
		Proxy:             nil,
		DialContext: func(_ context.Context, network, addr string) (net.Conn, error) {
			return client.Dial(network, addr)
		},
	}}
	get := func() string {
		resp, err := hc.Get("http://198.18.0.11/")
		if err != nil {
			return "error: " + err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		body := fmt.Sprintf("%d %s", resp.StatusCode, strings.TrimSpace(string(b)))
		if resp.Header.Get("X-Request-ID") == "" {
			body += " (no request id)"
		}
		return body
	}
	status := func() admin.Status {
		out, _ := exec.Command(lbctlBin, "-socket", filepath.Join(dir, "lbd.sock"), "status", "-json").Output()
		var st admin.Status
		json.Unmarshal(out, &st)
		return st
	}
	seen := map[string]int{}
	for i := 0; i < 10; i++ {
		seen[get()]++
	}
	if seen["200 be1"] != 5 || seen["200 be2"] != 5 {
		t.Fatalf("10 GETs through lbd: %v, want 5 each from be1 and be2", seen)
	}

	// be2 dies: it leaves rotation within fall × interval + timeout.
	bes[1].stop()
	killed := time.Now()
	lab.Eventually(t, 10*time.Second, func() (bool, string) {
		st := status()
		if len(st.Pools) == 0 {
			return false, "no status"
		}
		b := st.Pools[0].Backends[1]
		return b.Health == "unhealthy" && b.State == "down", fmt.Sprintf("be2 %s/%s (%s)", b.State, b.Health, b.LastCheck)
	})
	t.Logf("be2 out of rotation %v after it died (fall 2 × 200ms + timeout 100ms)", time.Since(killed).Round(time.Millisecond))
	for i := 0; i < 10; i++ {
		if got := get(); got != "200 be1" {
			t.Fatalf("GET with be2 down: %q", got)
		}
	}
	out, _ := exec.Command(lbctlBin, "-socket", filepath.Join(dir, "lbd.sock"), "status").CombinedOutput()
	if !strings.Contains(string(out), "unhealthy") {
		t.Errorf("lbctl status does not show be2 unhealthy:\n%s", out)
	}

	// be2 returns after rise × interval.
	bes[1].start(t)
	lab.Eventually(t, 10*time.Second, func() (bool, string) {
		b := status().Pools[0].Backends[1]
		return b.Health == "healthy" && b.State == "up", fmt.Sprintf("be2 %s/%s", b.State, b.Health)
	})
	lab.Eventually(t, 10*time.Second, func() (bool, string) {
		got := get()
		return got == "200 be2", "GET answered " + got
	})
}
