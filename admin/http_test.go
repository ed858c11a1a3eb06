package admin

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func sampleClusterStatus() Status {
	t0 := time.Date(2026, 11, 26, 1, 0, 0, 0, time.UTC)
	return Status{
		Node: "lb1", Version: "1.0.0",
		Instances: []Instance{{Name: "web", State: "MASTER", EffectivePriority: 150}},
		Frontends: []Frontend{{Name: "plain", Mode: "http", State: "listening", AccessLog: &AccessLogCounts{Lines: 42, Dropped: 3}}},
		Pools: []Pool{{Name: "app", Backends: []Backend{
			{Address: "198.18.0.21:8080", State: "up", Active: 3, BytesIn: 10, BytesOut: 20,
				Health: "degraded", HealthTransitions: 4, Ejections: 1, LastLatency: 1500 * time.Microsecond},
			{Address: "198.18.0.22:8080", State: "draining"},
		}}},
		Members: []Member{
			{Name: "lb1", Addr: "198.18.0.11:7946", State: "alive", Since: t0, Self: true},
			{Name: "lb2", Addr: "198.18.0.12:7946", State: "dead", Since: t0},
		},
		Peers: []SessionPeer{{Name: "lb2", Addr: "198.18.0.12:7946", State: "streaming", Since: t0, Pending: 7, LagMs: 1.5}},
	}
}

// TestMetrics reads /metrics as Prometheus would and checks the samples
// an operator alerts on.
func TestMetrics(t *testing.T) {
	srv := httptest.NewServer(NewHTTPHandler(sampleClusterStatus))
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	got := map[string]string{}
	for _, line := range strings.Split(string(b), "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		got[line[:i]] = line[i+1:]
	}
	want := map[string]string{
		`lbd_vrrp_state{instance="web"}`:                                                 "2",
		`lbd_backend_up{pool="app",backend="198.18.0.21:8080"}`:                          "1",
		`lbd_backend_up{pool="app",backend="198.18.0.22:8080"}`:                          "0",
		`lbd_cluster_member_up{member="lb1",addr="198.18.0.11:7946"}`:                    "1",
		`lbd_cluster_member_up{member="lb2",addr="198.18.0.12:7946"}`:                    "0",
		`lbd_sync_peer_streaming{peer="lb2"}`:                                            "1",
		`lbd_sync_peer_lag_seconds{peer="lb2"}`:                                          "0.0015",
		`lbd_sync_peer_pending_records{peer="lb2"}`:                                      "7",
		`lbd_backend_bytes_total{pool="app",backend="198.18.0.21:8080",direction="out"}`: "20",
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %q, want %q", k, got[k], v)
		}
	}
	if !strings.Contains(string(b), "# TYPE lbd_sync_peer_lag_seconds gauge") {
		t.Errorf("no TYPE line for lbd_sync_peer_lag_seconds:\n%s", b)
	}
}

// TestStatusJSON: /status is the Status as lbctl status -json shows it.
func TestStatusJSON(t *testing.T) {
	srv := httptest.NewServer(NewHTTPHandler(sampleClusterStatus))
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/status")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var st Status
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(sampleClusterStatus(), st); diff != "" {
		t.Errorf("/status (-want +got):\n%s", diff)
	}
}

// TestMetricsDocumented: every metric family /metrics writes is in the
// operator's guide (docs/lbctl.md).
func TestMetricsDocumented(t *testing.T) {
	doc, err := os.ReadFile("../docs/lbctl.md")
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	st := sampleClusterStatus()
	st.Frontends[0].AccessLog = &AccessLogCounts{}
	WriteMetrics(&b, st)
	n := 0
	for _, line := range strings.Split(b.String(), "\n") {
		if name, ok := strings.CutPrefix(line, "# TYPE "); ok {
			name, _, _ = strings.Cut(name, " ")
			n++
			if !strings.Contains(string(doc), "`"+name+"`") {
				t.Errorf("metric %s is not in docs/lbctl.md", name)
			}
		}
	}
	if n < 10 {
		t.Errorf("only %d metric families written", n)
	}
}
