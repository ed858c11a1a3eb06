package main

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"lbd/admin"
	"lbd/lab"
)

// httpConfig: lb1 in front of be1 and be2 (198.18.0.21, .22), checked
// over HTTP every 200ms.
func httpConfig(dir string) string {
	return lb1Node(dir) + webFrontend + `
[[pool]]
name = "app"
algorithm = "round_robin"
` + httpHealth("200ms", "100ms") + backendsTOML("198.18.0.21:8080", "198.18.0.22:8080")
}

// httpBackend serves "/" with its name and "/health" with 200; it can be
// stopped and started again.
type httpBackend struct {
	h    *lab.Host
	mu   sync.Mutex
	srv  *http.Server
	hits map[string]int
}

func (b *httpBackend) start(t *testing.T) {
	srv := serveHTTP(t, b.h, b.h.IPv4.String()+":8080", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b.mu.Lock()
		b.hits[r.URL.Path]++
		b.mu.Unlock()
		io.WriteString(w, b.h.Name+"\n")
	}))
	b.mu.Lock()
	b.srv = srv
	b.mu.Unlock()
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
	x := newLB1Lab(t)
	var bes []*httpBackend
	for i := 0; i < 2; i++ {
		b := &httpBackend{h: x.l.AddHostAddr(fmt.Sprintf("be%d", i+1), 21+i), hits: map[string]int{}}
		b.start(t)
		bes = append(bes, b)
	}
	x.start(t, httpConfig(x.dir))
	hc := x.httpClient(false)
	get := func() string {
		resp, body, err := getText(hc, "http://198.18.0.11/")
		if err != nil {
			return "error: " + err.Error()
		}
		got := fmt.Sprintf("%d %s", resp.StatusCode, body)
		if resp.Header.Get("X-Request-ID") == "" {
			got += " (no request id)"
		}
		return got
	}
	status := func() admin.Status {
		st, _ := x.status()
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
	out, _ := lbctl(x.lbctl, x.dir, "status")
	if !strings.Contains(out, "unhealthy") {
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
