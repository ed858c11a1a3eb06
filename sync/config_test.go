package lbsync

import (
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"lbd/config"
)

func TestLoadKey(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := write("good", base64.StdEncoding.EncodeToString(key1)+"\n")
	k, err := LoadKey(good)
	if err != nil || !cmp.Equal(k, key1) {
		t.Errorf("LoadKey(good) = %x, %v; want %x", k, err, key1)
	}
	for name, content := range map[string]string{
		"not-base64": "not base64!",
		"short":      base64.StdEncoding.EncodeToString([]byte("0123456789")),
	} {
		if _, err := LoadKey(write(name, content)); err == nil || !strings.HasPrefix(err.Error(), "sync: ") {
			t.Errorf("LoadKey(%s) = %v, want a sync: error", name, err)
		}
	}
	if _, err := LoadKey(filepath.Join(dir, "missing")); err == nil {
		t.Error("LoadKey(missing) succeeded")
	}

	c := &config.Config{Node: config.Node{Name: "lb1", StateDir: "/var/lib/lbd"},
		Cluster: config.Cluster{Bind: "198.18.0.11:7946", Peers: []string{"198.18.0.12:7946"}, SecretKeyFile: good}}
	cfg, ok, err := FromConfig(c)
	want := Config{NodeName: "lb1", Bind: "198.18.0.11:7946", Peers: []string{"198.18.0.12:7946"}, SecretKey: key1, StateDir: "/var/lib/lbd"}
	if !ok || err != nil {
		t.Fatalf("FromConfig: %v, %v", ok, err)
	}
	if diff := cmp.Diff(want, cfg, cmp.AllowUnexported(Config{})); diff != "" {
		t.Errorf("FromConfig (-want +got):\n%s", diff)
	}
	if _, ok, err := FromConfig(&config.Config{}); ok || err != nil {
		t.Errorf("FromConfig without bind: %v, %v; want clustering off", ok, err)
	}
}

func TestNewRefusesBadConfig(t *testing.T) {
	for name, cfg := range map[string]Config{
		"no name":   {Bind: "127.0.0.1:0"},
		"no bind":   {NodeName: "lb1"},
		"short key": {NodeName: "lb1", Bind: "127.0.0.1:0", SecretKey: []byte("short")},
		"bad bind":  {NodeName: "lb1", Bind: "127.0.0.1"},
	} {
		if c, err := New(cfg, testLog(t)); err == nil {
			c.Close()
			t.Errorf("%s: New succeeded", name)
		}
	}
}
