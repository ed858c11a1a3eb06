// Package packaging holds the .deb's files (systemd unit, defaults, the
// stock /etc/lbd/lbd.toml, maintainer scripts) and builds it with
// build-deb.sh; this test builds the package and checks what it installs.
package packaging

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func run(t *testing.T, dir, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

func TestDeb(t *testing.T) {
	if _, err := exec.LookPath("dpkg-deb"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("dpkg-deb not installed")
		}
		t.Skip("dpkg-deb not installed")
	}
	top, _ := filepath.Abs("..")
	bin := t.TempDir()
	run(t, top, "go", "build", "-o", bin+"/", "./cmd/lbd", "./cmd/lbctl")
	out := run(t, top, "packaging/build-deb.sh", "1.2.3", bin)
	deb := strings.TrimSpace(out)
	t.Cleanup(func() { os.Remove(deb) })

	contents := run(t, top, "dpkg-deb", "-c", deb)
	for _, want := range []string{
		"./usr/sbin/lbd", "./usr/bin/lbctl", "./lib/systemd/system/lbd.service",
		"./etc/default/lbd", "./etc/lbd/lbd.toml", "./usr/share/doc/lbd/configuration.md",
		"./usr/share/doc/lbd/examples/lbd.toml",
	} {
		if !strings.Contains(contents, want+"\n") && !strings.Contains(contents, want+" ") {
			t.Errorf("package lacks %s; contents:\n%s", want, contents)
		}
	}
	if strings.Contains(contents, "_test.go") {
		t.Errorf("package ships test files:\n%s", contents)
	}
	if got := strings.TrimSpace(run(t, top, "dpkg-deb", "-f", deb, "Version")); got != "1.2.3" {
		t.Errorf("Version = %q, want 1.2.3", got)
	}

	// The shipped configuration must pass `lbd -check` as installed.
	root := t.TempDir()
	run(t, top, "dpkg-deb", "-x", deb, root)
	out = run(t, root, root+"/usr/sbin/lbd", "-check", "-config", root+"/etc/lbd/lbd.toml")
	if !strings.Contains(out, "configuration is valid") {
		t.Errorf("lbd -check on the shipped lbd.toml: %s", out)
	}
	out = run(t, root, root+"/usr/sbin/lbd", "-check", "-config", root+"/usr/share/doc/lbd/examples/lbd.toml")
	if !strings.Contains(out, "configuration is valid") {
		t.Errorf("lbd -check on the shipped example: %s", out)
	}
}
