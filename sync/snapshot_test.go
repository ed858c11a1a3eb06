package lbsync

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// snapshotOf writes a snapshot of a local cluster holding a few entries,
// on a fake clock, and returns the directory and the clock.
func snapshotOf(t *testing.T) (string, *fakeClock) {
	t.Helper()
	dir := t.TempDir()
	c, clk := localCluster(t, "lb1")
	c.cfg.StateDir = dir
	tb := c.Table("sticky", 1000)
	tb.Store("long", "198.18.1.1:80", time.Hour)
	tb.Store("short", "198.18.1.2:80", time.Minute)
	tb.Store("forever", "198.18.1.3:80", 0)
	tb.Store("gone", "198.18.1.4:80", time.Hour)
	tb.Delete("gone")
	id, _ := c.names.id([]byte("lb2"))
	tb.apply(&record{version: 5, ttl: 3600000, key: []byte("peer"), value: []byte("198.18.1.5:80")}, id, c.now())
	c.Table("empty", 10)
	if err := c.snapshot(); err != nil {
		t.Fatal(err)
	}
	return dir, clk
}

// restored loads dir into a fresh local cluster at the clock's time.
func restored(t *testing.T, dir string, clk *fakeClock) *Cluster {
	t.Helper()
	c, _ := localCluster(t, "lb1")
	c.now = clk.now
	c.cfg.StateDir = dir
	c.restore()
	return c
}

func TestSnapshotRoundTrip(t *testing.T) {
	dir, clk := snapshotOf(t)
	clk.advance(2 * time.Minute) // "short" expired while the node was down
	c := restored(t, dir, clk)
	tb := c.Table("sticky", 1000)
	got := lookups(tb, "long", "short", "forever", "gone", "peer")
	if diff := cmp.Diff([]string{"198.18.1.1:80", "-", "198.18.1.3:80", "-", "198.18.1.5:80"}, got); diff != "" {
		t.Errorf("restored lookups (-want +got):\n%s", diff)
	}
	if st := tb.Stats(); st.Len != 3 || st.Tombstones != 1 || st.MaxEntries != 1000 {
		t.Errorf("restored stats %+v; want Len 3, Tombstones 1, MaxEntries 1000", st)
	}
	// Expiry survives: "long" dies an hour after it was stored.
	clk.advance(time.Hour)
	if _, ok := tb.Lookup("long"); ok {
		t.Error("long outlived its ttl across the restart")
	}
	// Versions and writers survive, so the merge rule still holds.
	id, _ := c.names.id([]byte("lb2"))
	if tb.apply(&record{version: 5, ttl: 3600000, key: []byte("peer"), value: []byte("x")}, id, c.now()) {
		t.Error("a replay of lb2's write was applied over the restored copy")
	}
	if c.Stats().SnapshotErrors != 0 {
		t.Errorf("SnapshotErrors = %d", c.Stats().SnapshotErrors)
	}
}

func TestCorruptSnapshotIgnored(t *testing.T) {
	tests := []struct {
		name  string
		spoil func([]byte) []byte
	}{
		{"bit flip in a record", func(b []byte) []byte { b[len(b)/2] ^= 0x10; return b }},
		{"bit flip in the checksum", func(b []byte) []byte { b[len(b)-1] ^= 1; return b }},
		{"truncated", func(b []byte) []byte { return b[:len(b)-9] }},
		{"bytes appended", func(b []byte) []byte { return append(b, 0) }},
		{"bad magic", func(b []byte) []byte { b[0] = 'X'; return b }},
		{"empty", func([]byte) []byte { return nil }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir, clk := snapshotOf(t)
			path := filepath.Join(dir, snapName)
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, tc.spoil(b), 0o600); err != nil {
				t.Fatal(err)
			}
			c := restored(t, dir, clk)
			if tables := c.Tables(); len(tables) != 0 {
				t.Errorf("%d tables restored from a corrupt snapshot", len(tables))
			}
			if got := c.Stats().SnapshotErrors; got != 1 {
				t.Errorf("SnapshotErrors = %d, want 1", got)
			}
			if _, err := os.Stat(path + ".corrupt"); err != nil {
				t.Errorf("corrupt snapshot not kept aside: %v", err)
			}
		})
	}
}

// TestSnapshotRestart runs real nodes: A writes and closes (a snapshot on
// Close), comes back alone with its tables, then catches up from B on what
// changed while it was down.
func TestSnapshotRestart(t *testing.T) {
	dir := t.TempDir()
	a := startNode(t, "lb1", withStateDir(dir))
	b := startNode(t, "lb2", withPeers(peerOf(a)))
	waitConnected(t, a, b)
	ta, tb := a.Table("sticky", 1000), b.Table("sticky", 1000)
	for i := range 100 {
		ta.Store(key(i), backend(i), time.Hour)
	}
	waitFor(t, "A's writes on B", func() bool { return tb.Len() == 100 })
	if err := a.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	tb.Store(key(100), backend(100), time.Hour) // while A is down
	tb.Delete(key(0))

	a = startNode(t, "lb1", withStateDir(dir)) // no peers: alone
	ta = a.Table("sticky", 1000)
	if got := ta.Len(); got != 100 {
		t.Fatalf("restarted A holds %d entries, want its 100", got)
	}
	if _, err := a.ml.Join([]string{peerOf(b)}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "A caught up", func() bool { return ta.Len() == 100 && ta.Digest() == tb.Digest() })
	if diff := cmp.Diff([]string{"-", backend(100)}, lookups(ta, key(0), key(100))); diff != "" {
		t.Errorf("changes made while A was down (-want +got):\n%s", diff)
	}
}

func TestMissingSnapshot(t *testing.T) {
	c, _ := localCluster(t, "lb1")
	if _, err := c.loadSnapshot(filepath.Join(t.TempDir(), snapName)); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("load of a missing snapshot: %v, want ErrNotExist", err)
	}
}
