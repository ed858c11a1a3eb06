package bench

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// requireProgram skips when name is not installed, or fails under CI=true
// (`make deps` installs it there).
func requireProgram(t *testing.T, name string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is not installed: %v", name, err)
		}
		t.Skipf("%s is not installed", name)
	}
	return path
}

// TestPeerConfigs checks the HAProxy and nginx configurations with the
// programs' own checkers (`haproxy -c`, `nginx -t`).
func TestPeerConfigs(t *testing.T) {
	routes := []route{
		{name: "bulk", mode: "tcp", backends: []string{"127.0.0.1:9001"}},
		{name: "http", mode: "http", backends: []string{"127.0.0.1:9002", "127.0.0.1:9003"}},
	}
	addrs := map[string]string{"bulk": "127.0.0.1:8001", "http": "127.0.0.1:8002"}
	for _, splice := range []bool{false, true} {
		name := map[bool]string{false: haproxyPlain, true: haproxySplice}[splice]
		t.Run(name, func(t *testing.T) {
			bin := requireProgram(t, "haproxy")
			cfg := haproxyConfig(routes, addrs, splice, 20000)
			if got := strings.Contains(cfg, "option splice-request\n  option splice-response"); got != splice {
				t.Errorf("splice options present: %v, want %v", got, splice)
			}
			path := filepath.Join(t.TempDir(), "haproxy.cfg")
			if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
				t.Fatal(err)
			}
			if out, err := exec.Command(bin, "-c", "-f", path).CombinedOutput(); err != nil {
				t.Errorf("haproxy -c: %v\n%s\nconfiguration:\n%s", err, out, cfg)
			}
		})
	}
	t.Run("nginx", func(t *testing.T) {
		bin := requireProgram(t, "nginx")
		dir := t.TempDir()
		cfg := nginxConfig(dir, routes, addrs, 20000)
		path := filepath.Join(dir, "nginx.conf")
		if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
			t.Fatal(err)
		}
		if out, err := exec.Command(bin, "-t", "-c", path, "-p", dir).CombinedOutput(); err != nil {
			t.Errorf("nginx -t: %v\n%s\nconfiguration:\n%s", err, out, cfg)
		}
	})
}
