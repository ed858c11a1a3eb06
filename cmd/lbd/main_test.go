package main

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestCheck(t *testing.T) {
	lbdBin, _ := binaries(t)
	example, _ := filepath.Abs("../../docs/examples/lbd.toml")
	out, err := exec.Command(lbdBin, "-check", "-config", example).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "configuration is valid") {
		t.Errorf("lbd -check on the shipped example: %v\n%s", err, out)
	}

	bad := filepath.Join(t.TempDir(), "lbd.toml")
	os.WriteFile(bad, []byte("[node]\nname = \"lb1\"\n\n[[pool]]\nname = \"app\"\nhelth = 3\n  [[pool.backend]]\n  address = \"198.18.0.21:80\"\n"), 0o644)
	out, err = exec.Command(lbdBin, "-check", "-config", bad).CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 {
		t.Errorf("lbd -check on a typo: %v, want exit 1", err)
	}
	if !strings.Contains(string(out), "lbd.toml:6:") || !strings.Contains(string(out), "helth") {
		t.Errorf("lbd -check on a typo says %q; want the line (6) and the key", out)
	}
}

func TestPrintDefaultsAndVersion(t *testing.T) {
	lbdBin, _ := binaries(t)
	out, err := exec.Command(lbdBin, "-print-defaults").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "admin_socket") || !strings.Contains(string(out), "advert_interval") {
		t.Errorf("lbd -print-defaults: %v\n%s", err, out)
	}
	out, err = exec.Command(lbdBin, "-version").CombinedOutput()
	if err != nil || !strings.HasPrefix(string(out), "lbd ") {
		t.Errorf("lbd -version: %v %q", err, out)
	}
}

func execCommand(name string, args ...string) (string, error) {
	out, err := exec.Command(name, args...).CombinedOutput()
	return string(out), err
}
