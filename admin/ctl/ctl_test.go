package ctl

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"lbd/admin"
)

var update = flag.Bool("update", false, "rewrite golden files")

var t0 = time.Date(2026, 11, 26, 1, 0, 0, 0, time.UTC)

func sampleStatus() admin.Status {
	return admin.Status{
		Node: "lb1", Version: "1.0.0", PID: 4242, Started: t0.Add(-2 * time.Hour),
		Config: "/etc/lbd/lbd.toml", ConfigLoaded: t0.Add(-5 * time.Minute), Reloads: 3, ReloadErrors: 1,
		Instances: []admin.Instance{{
			Name: "web", Interface: "eth0", VRID: 51, Version: 3, State: "MASTER", Priority: 150,
			EffectivePriority: 90, Master: "198.18.0.11", Since: t0.Add(-90 * time.Second),
			VIPs:          []string{"198.18.0.100/24"},
			Counters:      map[string]uint64{"adverts_sent": 900, "adverts_received": 12, "transitions": 2},
			Warnings:      []string{"VIP 198.18.0.100/24 was removed by someone else; restored"},
			FailingTracks: []string{"pool app"},
		}},
		Frontends: []admin.Frontend{{Name: "plain", Bind: "198.18.0.100:80", Mode: "http", DefaultPool: "app", State: "listening", Active: 7, Total: 1234,
			AccessLog: &admin.AccessLogCounts{Lines: 1234, Dropped: 2}}},
		Pools: []admin.Pool{{Name: "app", Algorithm: "least_conn", Backends: []admin.Backend{
			{Address: "198.18.0.21:8080", State: "up", Weight: 1, EffectiveWeight: 1, Active: 3, Total: 600, BytesIn: 1 << 20, BytesOut: 5 << 30,
				Health: "healthy", LastCheck: "HTTP 200", LastLatency: 1200 * time.Microsecond, LastCheckAt: t0.Add(-3 * time.Second)},
			{Address: "198.18.0.22:8080", State: "draining", Weight: 2, EffectiveWeight: 0, Active: 4, Total: 634, BytesIn: 512, BytesOut: 2048},
		}}},
	}
}

func TestStatusTableGolden(t *testing.T) {
	st := sampleStatus()
	var b bytes.Buffer
	writeStatus(&b, &st, t0)
	golden := filepath.Join("testdata", "status.golden")
	if *update {
		os.WriteFile(golden, b.Bytes(), 0o644)
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(string(want), b.String()); diff != "" {
		t.Errorf("lbctl status table (-want +got):\n%s", diff)
	}
}

// serve runs an admin server whose handler is h and returns its socket.
func serve(t *testing.T, h admin.Handler) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "lbd.sock")
	s, err := admin.Listen(path, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); s.Serve(ctx, h) }()
	t.Cleanup(func() { cancel(); <-done })
	return path
}

func run(args ...string) (code int, stdout, stderr string) {
	var o, e bytes.Buffer
	code = Run(context.Background(), "test", args, &o, &e)
	return code, o.String(), e.String()
}

func TestNotRunning(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "lbd.sock")
	code, _, stderr := run("-socket", sock, "status")
	want := "lbctl: cannot reach lbd at " + sock + ": is lbd running?\n"
	if code != 1 || stderr != want {
		t.Errorf("lbctl status without lbd: exit %d, stderr %q; want exit 1, %q", code, stderr, want)
	}
}

func TestStatusJSONAndTable(t *testing.T) {
	sock := serve(t, func(_ context.Context, req admin.Request) admin.Response {
		if req.Cmd != admin.CmdStatus {
			return admin.ErrorResponse(errors.New("unexpected"))
		}
		return admin.OKResponse(sampleStatus())
	})
	code, out, stderr := run("-socket", sock, "status", "-json")
	if code != 0 || !strings.Contains(out, `"node": "lb1"`) || !strings.Contains(out, `"vrid": 51`) {
		t.Errorf("status -json: exit %d, out %q, err %q", code, out, stderr)
	}
	code, out, _ = run("-socket", sock, "status")
	if code != 0 || !strings.Contains(out, "web") || !strings.Contains(out, "MASTER") {
		t.Errorf("status: exit %d, out %q", code, out)
	}
}

func TestReloadRefusedShowsDetails(t *testing.T) {
	sock := serve(t, func(_ context.Context, req admin.Request) admin.Response {
		return admin.ErrorResponse(errors.New("reload refused"), `lbd.toml:3: unknown key "pool.helth"`, `lbd.toml:9: vrrp[0].vrid: 0 is out of range 1..255`)
	})
	code, _, stderr := run("-socket", sock, "reload")
	want := "lbctl: reload refused\n  lbd.toml:3: unknown key \"pool.helth\"\n  lbd.toml:9: vrrp[0].vrid: 0 is out of range 1..255\n"
	if code != 1 || stderr != want {
		t.Errorf("refused reload: exit %d, stderr %q; want exit 1, %q", code, stderr, want)
	}
}

func TestUsageErrors(t *testing.T) {
	for _, args := range [][]string{{}, {"frobnicate"}, {"status", "extra"}} {
		if code, _, _ := run(args...); code != 2 {
			t.Errorf("lbctl %v: exit %d, want 2", args, code)
		}
	}
}

// TestNoPacketCodeInLbctl keeps lbctl free of raw-socket and netlink code.
func TestNoPacketCodeInLbctl(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "lbd/cmd/lbctl").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for _, dep := range strings.Fields(string(out)) {
		for _, banned := range []string{"lbd/vrrp", "lbd/vip", "lbd/proxy", "lbd/sync", "lbd/health", "netlink", "mdlayher", "memberlist"} {
			if strings.Contains(dep, banned) {
				t.Errorf("lbctl depends on %s", dep)
			}
		}
	}
}

func TestSessionsTableGolden(t *testing.T) {
	s := admin.Sessions{
		Tables: []admin.SessionTable{
			{Name: "source-ip", Entries: 10000, MaxEntries: 1000000, Digest: "5d2c1b0a99887766"},
			{Name: "sticky", Entries: 2, Tombstones: 1, MaxEntries: 1000000, Evictions: 3, Digest: "141aa22cea63e2dc"},
		},
		Peers: []admin.SessionPeer{
			{Name: "lb2", Addr: "198.18.0.12:7946", State: "streaming", Since: t0.Add(-90 * time.Second), RecordsSent: 10002, LagMs: 0.21, LastAck: t0.Add(-1500 * time.Millisecond)},
			{Name: "lb3", Addr: "198.18.0.13:7946", State: "connecting", Since: t0.Add(-4 * time.Second)},
		},
		Counters: map[string]uint64{"deltas_sent": 10002, "records_received": 7},
	}
	var b bytes.Buffer
	writeSessions(&b, &s, t0)
	s.Pool, s.Peers = "db", nil
	s.Tables = []admin.SessionTable{{Name: "source-ip", Entries: 10000}, {Name: "sticky"}}
	writeSessions(&b, &s, t0)
	golden := filepath.Join("testdata", "sessions.golden")
	if *update {
		os.WriteFile(golden, b.Bytes(), 0o644)
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(string(want), b.String()); diff != "" {
		t.Errorf("lbctl sessions table (-want +got):\n%s", diff)
	}
}
