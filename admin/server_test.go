package admin

import (
	"bufio"
	"context"
	"errors"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func echoHandler(_ context.Context, req Request) Response {
	if req.Cmd == "panic" {
		panic("boom")
	}
	return OKResponse(map[string]any{"cmd": req.Cmd, "args": req.Args})
}

func startServer(t *testing.T, path string) (*Server, chan error) {
	t.Helper()
	s, err := Listen(path, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatalf("Listen: %v", err)
	}
	done := make(chan error, 1)
	ctx, cancel := context.WithCancel(context.Background())
	go func() { done <- s.Serve(ctx, echoHandler) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return s, done
}

func TestCallRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "run", "lbd.sock")
	startServer(t, path)

	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := fi.Mode().Perm(); got != SocketMode {
		t.Errorf("socket mode = %o, want %o", got, SocketMode)
	}
	resp, err := Call(context.Background(), path, "status", "a", "b")
	if err != nil {
		t.Fatalf("Call: %v", err)
	}
	var got struct {
		Cmd  string   `json:"cmd"`
		Args []string `json:"args"`
	}
	if err := resp.Decode(&got); err != nil {
		t.Fatal(err)
	}
	if !resp.OK || got.Cmd != "status" || strings.Join(got.Args, ",") != "a,b" {
		t.Errorf("response = %+v %+v, want ok status [a b]", resp, got)
	}
}

func TestCallNotRunning(t *testing.T) {
	path := filepath.Join(t.TempDir(), "lbd.sock")
	_, err := Call(context.Background(), path, "status")
	if !errors.Is(err, ErrNotRunning) {
		t.Fatalf("Call without server: err = %v, want ErrNotRunning", err)
	}
	want := "cannot reach lbd at " + path + ": is lbd running?"
	if err.Error() != want {
		t.Errorf("error text = %q, want %q", err.Error(), want)
	}
}

func TestStaleSocketReplaced(t *testing.T) {
	path := filepath.Join(t.TempDir(), "lbd.sock")
	// A socket file nobody listens on, as a SIGKILLed lbd leaves behind.
	fd, err := syscall.Socket(syscall.AF_UNIX, syscall.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Bind(fd, &syscall.SockaddrUnix{Name: path}); err != nil {
		t.Fatal(err)
	}
	syscall.Close(fd)
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("stale socket not created: %v", err)
	}
	startServer(t, path)
	if _, err := Call(context.Background(), path, "status"); err != nil {
		t.Fatalf("Call after replacing stale socket: %v", err)
	}
}

func TestLiveSocketRefused(t *testing.T) {
	path := filepath.Join(t.TempDir(), "lbd.sock")
	startServer(t, path)
	_, err := Listen(path, slog.New(slog.DiscardHandler))
	if err == nil || !strings.Contains(err.Error(), "another lbd is already serving "+path) {
		t.Fatalf("second Listen: err = %v, want 'another lbd is already serving'", err)
	}
	// The first server must still answer.
	if _, err := Call(context.Background(), path, "status"); err != nil {
		t.Fatalf("first server no longer answers: %v", err)
	}
}

func TestNotASocketRefused(t *testing.T) {
	path := filepath.Join(t.TempDir(), "lbd.sock")
	if err := os.WriteFile(path, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Listen(path, slog.New(slog.DiscardHandler))
	if err == nil || !strings.Contains(err.Error(), "is not a socket") {
		t.Fatalf("Listen over a regular file: err = %v", err)
	}
	if b, _ := os.ReadFile(path); string(b) != "x" {
		t.Error("Listen clobbered a regular file")
	}
}

func TestCloseRemovesSocketAndDropsClients(t *testing.T) {
	path := filepath.Join(t.TempDir(), "lbd.sock")
	s, done := startServer(t, path)
	idle, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()
	// Make sure the server has accepted the idle client before closing.
	if _, err := Call(context.Background(), path, "status"); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	select {
	case err := <-done:
		done <- err // for the cleanup
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return after Close")
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("socket still present after Close: %v", err)
	}
	idle.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := idle.Read(make([]byte, 1)); err == nil {
		t.Error("idle client connection still open after Close")
	}
}

func TestMalformedRequests(t *testing.T) {
	path := filepath.Join(t.TempDir(), "lbd.sock")
	startServer(t, path)
	c, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	r := bufio.NewReader(c)
	for _, tc := range []struct{ send, want string }{
		{"not json\n", "malformed request"},
		{`{"v":99,"cmd":"status"}` + "\n", "protocol version 99 not supported"},
		{`{"v":1,"cmd":"panic"}` + "\n", `internal error handling \"panic\"`},
		{`{"v":1,"cmd":"status"}` + "\n", `"ok":true`},
	} {
		if _, err := c.Write([]byte(tc.send)); err != nil {
			t.Fatal(err)
		}
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("after %q: %v", tc.send, err)
		}
		if !strings.Contains(line, tc.want) {
			t.Errorf("answer to %q = %q, want it to contain %q", tc.send, line, tc.want)
		}
	}
}
