package main

import (
	"fmt"
	"io"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"lbd/admin"
	"lbd/lab"
)

// outlierConfig: lb1 in front of be1 to be3 (198.18.0.21 to .23), checked
// over HTTP every 100ms, with outlier detection ejecting for ejection and
// slow start over slowStart.
func outlierConfig(dir, slowStart, ejection string) string {
	return lb1Node(dir) + webFrontend + fmt.Sprintf(`
[[pool]]
name = "app"
algorithm = "round_robin"
retries = 0
slow_start = %q
`, slowStart) + httpHealth("100ms", "100ms") + fmt.Sprintf(`  [pool.outlier]
  consecutive_errors = 3
  ejection_time = %q
  max_ejection_percent = 34
`, ejection) + backendsTOML("198.18.0.21:8080", "198.18.0.22:8080", "198.18.0.23:8080")
}

// faulty answers /health with 200 always and other paths with 200 or, while
// broken, 500.
type faulty struct {
	name   string
	broken atomic.Bool
	up     atomic.Bool
	hits   atomic.Int64
}

func (f *faulty) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/health" {
		f.hits.Add(1)
		if f.broken.Load() {
			w.WriteHeader(500)
		}
	} else if !f.up.Load() {
		w.WriteHeader(503)
	}
	io.WriteString(w, f.name+"\n")
}

// TestOutlierAndSlowStartInLab: backends that fail real traffic while
// passing /health are ejected by outlier detection, never more than
// max_ejection_percent of the pool at once; a backend back from an outage
// ramps its share of requests over slow_start.
func TestOutlierAndSlowStartInLab(t *testing.T) {
	x := newLB1Lab(t)
	var bes []*faulty
	for i := 0; i < 3; i++ {
		h := x.l.AddHostAddr(fmt.Sprintf("be%d", i+1), 21+i)
		f := &faulty{name: h.Name}
		f.up.Store(true)
		serveHTTP(t, h, h.IPv4.String()+":8080", f)
		bes = append(bes, f)
	}
	x.start(t, outlierConfig(x.dir, "4s", "30s"))
	hc := x.httpClient(true)
	get := func() (int, string) {
		resp, body, err := getText(hc, "http://198.18.0.11/")
		if err != nil {
			return 0, err.Error()
		}
		return resp.StatusCode, body
	}
	status := func() admin.Pool {
		st, _ := x.status()
		if len(st.Pools) == 0 {
			return admin.Pool{}
		}
		return st.Pools[0]
	}

	// be2 and be3 start failing real traffic; /health stays 200.
	bes[1].broken.Store(true)
	bes[2].broken.Store(true)
	for i := 0; i < 60; i++ {
		get()
		p := status()
		ejected := 0
		for _, b := range p.Backends {
			if b.Ejected {
				ejected++
			}
		}
		if ejected > 1 {
			t.Fatalf("%d of 3 backends ejected at once, max_ejection_percent 34 allows 1: %+v", ejected, p.Backends)
		}
	}
	lab.Eventually(t, 10*time.Second, func() (bool, string) {
		get()
		p := status()
		for _, b := range p.Backends[1:] {
			if b.Ejections > 0 && b.Health == "healthy" {
				return true, ""
			}
		}
		return false, fmt.Sprintf("no failing backend ejected while healthy: %+v", p.Backends)
	})

	// Slow start: be1 goes down (health) and comes back; its share ramps.
	bes[1].broken.Store(false)
	bes[2].broken.Store(false)
	bes[0].up.Store(false)
	lab.Eventually(t, 10*time.Second, func() (bool, string) {
		b := status().Backends[0]
		return b.State == "down", "be1 " + b.State
	})
	bes[0].up.Store(true)
	lab.Eventually(t, 10*time.Second, func() (bool, string) {
		b := status().Backends[0]
		return b.State == "up", "be1 " + b.State
	})
	first := status().Backends[0].SlowStartPermille
	if first >= 1000 {
		t.Errorf("be1 back at full weight at once (permille %d), want a ramp over slow_start", first)
	}
	lab.Eventually(t, 15*time.Second, func() (bool, string) {
		p := status().Backends[0].SlowStartPermille
		return p == 1000, fmt.Sprintf("be1 slow-start permille %d", p)
	})
	t.Logf("be1 returned at %d‰ of its weight and ramped to 1000‰ over slow_start", first)
}
