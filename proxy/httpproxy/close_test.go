package httpproxy

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestCloseLeavesNoGoroutines opens every kind of connection — an idle
// keep-alive one, an HTTP/2 one, a WebSocket tunnel and a request in
// flight — then closes the frontend: the request in flight completes,
// the tunnel is cut when the deadline passes, and no goroutine of the
// frontend is left.
func TestCloseLeavesNoGoroutines(t *testing.T) {
	release := make(chan struct{})
	slow := startBackend(t, "slow", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			<-release
		}
		io.WriteString(w, "done")
	})
	ws := startScripted(t, func(c net.Conn, r *bufio.Reader) {
		if _, err := readHead(r); err != nil {
			return
		}
		io.WriteString(c, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
		io.Copy(c, r)
	})
	base := goroutines()

	f, _ := setup(t, frontendTOML("app", "")+`
  [[frontend.route]]
  path_prefix = "/ws"
  pool = "ws"
`+poolsTOML("app", "ws"), slow, &backend{addr: ws.addr})

	// An idle keep-alive connection.
	idle := client(f)
	if _, body := get(t, idle, "http://x/"); body != "done" {
		t.Fatal(body)
	}
	// An HTTP/2 connection.
	h2 := h2cClient(f)
	get(t, h2, "http://x/")
	// A tunnel.
	tun := dial(t, f)
	defer tun.Close()
	io.WriteString(tun, "GET /ws HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n")
	tr := bufio.NewReader(tun)
	if resp, err := http.ReadResponse(tr, nil); err != nil || resp.StatusCode != 101 {
		t.Fatalf("upgrade: %v", err)
	}
	// A request in flight.
	inflight := make(chan string, 1)
	go func() {
		resp, err := client(f).Get("http://x/slow")
		if err != nil {
			inflight <- err.Error()
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		inflight <- string(b)
	}()
	waitFor(t, "the slow request to reach the backend", func() bool {
		for _, r := range slow.requests() {
			if r.URL.Path == "/slow" {
				return true
			}
		}
		return false
	})

	closed := make(chan error, 1)
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	go func() { closed <- f.Close(ctx) }()
	// New connections are refused at once.
	waitFor(t, "the listener to close", func() bool {
		c, err := net.Dial("tcp", f.Addr().String())
		if err == nil {
			c.Close()
		}
		return err != nil
	})
	close(release)
	if got := <-inflight; got != "done" {
		t.Errorf("request in flight: %q, want it to complete", got)
	}
	if err := <-closed; err != nil {
		t.Fatal(err)
	}
	// The tunnel was cut.
	tun.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadAll(tr); err != nil && !strings.Contains(err.Error(), "reset") {
		t.Errorf("tunnel after Close: %v", err)
	}
	idle.CloseIdleConnections()
	h2.CloseIdleConnections()
	waitFor(t, "goroutines to end", func() bool { return goroutines() <= base })
}
