package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"lbd/admin"
	"lbd/lab"
)

var (
	buildOnce sync.Once
	binDir    string
	buildErr  error
)

// binaries builds lbd and lbctl once per test binary.
func binaries(t *testing.T) (lbd, lbctl string) {
	t.Helper()
	buildOnce.Do(func() {
		binDir, buildErr = os.MkdirTemp("", "lbd-bin-")
		if buildErr != nil {
			return
		}
		out, err := exec.Command("go", "build", "-o", binDir+"/", "lbd/cmd/lbd", "lbd/cmd/lbctl").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return filepath.Join(binDir, "lbd"), filepath.Join(binDir, "lbctl")
}

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

const labConfig = `
[node]
name = "lb1"
admin_socket = "%[1]s/lbd.sock"
state_dir = "%[1]s/state"

[[frontend]]
name = "echo"
bind = "198.18.0.11:7000"
mode = "tcp"
default_pool = "app"

[[frontend]]
name = "vip"
bind = "198.18.0.100:7000"   # not on any interface: bound with IP_FREEBIND
mode = "tcp"
default_pool = "app"

[[pool]]
name = "app"
algorithm = "round_robin"
  [[pool.backend]]
  address = "198.18.0.21:8080"
`

// TestDaemonInLab runs lbd in a namespace as an operator would: start,
// status over lbctl, traffic through a frontend, a refused reload, SIGTERM.
func TestDaemonInLab(t *testing.T) {
	lbdBin, lbctlBin := binaries(t)
	l := lab.New(t)
	lb := l.AddHostAddr("lb1", 11)
	be := l.AddHostAddr("be1", 21)
	client := l.AddHostAddr("client", 50)

	// The backend greets every connection with its name.
	ln, err := be.Listen("tcp", "198.18.0.21:8080")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			fmt.Fprintln(c, "be1")
			c.Close()
		}
	}()

	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "lbd.toml")
	if err := os.WriteFile(cfgPath, []byte(fmt.Sprintf(labConfig, dir)), 0o644); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "lbd.sock")
	proc, err := lb.Start(lbdBin, "-config", cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	if err := proc.WaitOutput("lbd started", 30*time.Second); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(sock)
	if err != nil || fi.Mode().Perm() != 0o660 || fi.Mode()&os.ModeSocket == 0 {
		t.Fatalf("admin socket: %v, %v; want a socket of mode 0660", fi, err)
	}

	// lbctl status -json names the node and what it runs.
	out, err := exec.Command(lbctlBin, "-socket", sock, "status", "-json").CombinedOutput()
	if err != nil {
		t.Fatalf("lbctl status -json: %v\n%s", err, out)
	}
	var st admin.Status
	if err := json.Unmarshal(out, &st); err != nil {
		t.Fatalf("status is not JSON: %v\n%s", err, out)
	}
	if st.Node != "lb1" || len(st.Frontends) != 2 || len(st.Pools) != 1 || st.Pools[0].Backends[0].Address != "198.18.0.21:8080" {
		t.Errorf("status = %+v", st)
	}
	for _, f := range st.Frontends {
		if f.State != "listening" {
			t.Errorf("frontend %s is %s, want listening", f.Name, f.State)
		}
	}

	// A client in its own namespace reaches the backend through lbd.
	greet := func() (string, error) {
		c, err := client.Dial("tcp", "198.18.0.11:7000")
		if err != nil {
			return "", err
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(10 * time.Second))
		return bufio.NewReader(c).ReadString('\n')
	}
	if got, err := greet(); err != nil || got != "be1\n" {
		t.Fatalf("through lbd: %q, %v; want be1", got, err)
	}

	// A good reload that only adds a backend keeps the listener and an
	// established connection.
	held, err := client.Dial("tcp", "198.18.0.11:7000")
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	held.SetDeadline(time.Now().Add(20 * time.Second))
	heldR := bufio.NewReader(held)
	if line, err := heldR.ReadString('\n'); err != nil || line != "be1\n" {
		t.Fatalf("held connection: %q, %v", line, err)
	}
	grown := fmt.Sprintf(labConfig, dir) + "  [[pool.backend]]\n  address = \"198.18.0.22:8080\"\n"
	if err := os.WriteFile(cfgPath, []byte(grown), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err = exec.Command(lbctlBin, "-socket", sock, "reload").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "reloaded") {
		t.Fatalf("lbctl reload: %v\n%s", err, out)
	}
	out, _ = exec.Command(lbctlBin, "-socket", sock, "status", "-json").Output()
	json.Unmarshal(out, &st)
	if st.Reloads != 1 || len(st.Pools[0].Backends) != 2 || st.Frontends[0].Total == 0 {
		t.Errorf("after reload: reloads %d, backends %d, frontend total %d (a new listener would have counted 0)", st.Reloads, len(st.Pools[0].Backends), st.Frontends[0].Total)
	}
	// The held connection still belongs to its session: the backend
	// closed it after the greeting, so it reads EOF, not a reset.
	if _, err := heldR.ReadString('\n'); err == nil || strings.Contains(err.Error(), "reset") {
		t.Errorf("held connection after reload: %v", err)
	}

	// A broken file on SIGHUP: lbd stays up with the old configuration,
	// and lbctl reload says why.
	if err := os.WriteFile(cfgPath, []byte(fmt.Sprintf(labConfig, dir)+"\n[[pool]]\nname = \"app\"\nhelth = 1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := proc.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	if err := proc.WaitOutput("reload refused", 30*time.Second); err != nil {
		t.Fatal(err)
	}
	out, err = exec.Command(lbctlBin, "-socket", sock, "reload").CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 || !strings.Contains(string(out), "reload refused") || !strings.Contains(string(out), "lbd.toml:") || !strings.Contains(string(out), "helth") {
		t.Errorf("lbctl reload of a broken file: %v\n%s", err, out)
	}
	if got, err := greet(); err != nil || got != "be1\n" {
		t.Fatalf("after the refused reload: %q, %v; want be1", got, err)
	}

	// SIGTERM: an orderly stop that removes the socket. A connection still
	// open is cut after the stop timeout.
	stopAt := time.Now()
	if err := proc.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := proc.Wait(30 * time.Second); err != nil {
		t.Fatalf("lbd after SIGTERM: %v\n%s", err, proc.Output())
	}
	if took := time.Since(stopAt); took > 15*time.Second {
		t.Errorf("stopping took %v, more than the 10s stop timeout", took)
	}
	if _, err := os.Stat(sock); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("admin socket left after SIGTERM: %v", err)
	}
	out, _ = exec.Command(lbctlBin, "-socket", sock, "status").CombinedOutput()
	if want := "lbctl: cannot reach lbd at " + sock + ": is lbd running?\n"; string(out) != want {
		t.Errorf("lbctl status after stop: %q, want %q", out, want)
	}
}
