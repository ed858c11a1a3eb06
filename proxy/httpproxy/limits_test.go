package httpproxy

import (
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestLargeHead: a head larger than the small read buffer but within the
// limit goes through whole.
func TestLargeHead(t *testing.T) {
	b := startBackend(t, "b", nil)
	f, _ := simple(t, "", b)
	cookie := "big=" + strings.Repeat("c", 12<<10)
	resp, body := get(t, client(f), "http://x/", "Cookie", cookie)
	if resp.StatusCode != 200 || body != "b" {
		t.Fatalf("%d %q", resp.StatusCode, body)
	}
	if got := b.last(t).Header.Get("Cookie"); got != cookie {
		t.Errorf("backend saw a cookie of %d bytes, want %d", len(got), len(cookie))
	}
}

// TestMaxConnections: at max_connections the frontend stops accepting;
// the next client waits in the accept queue until a connection ends.
func TestMaxConnections(t *testing.T) {
	b := startBackend(t, "b", nil)
	f, _ := setup(t, appConfig("max_connections = 1", ""), b)
	first := client(f)
	if resp, _ := get(t, first, "http://x/"); resp.StatusCode != 200 {
		t.Fatal(resp.StatusCode)
	}
	done := make(chan int, 1)
	go func() {
		c, err := net.Dial("tcp", f.Addr().String())
		if err != nil {
			done <- 0
			return
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(20 * time.Second))
		io.WriteString(c, "GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n")
		resp, err := http.ReadResponse(newReader(c), nil)
		if err != nil {
			done <- 0
			return
		}
		done <- resp.StatusCode
	}()
	waitFor(t, "accepting to pause", func() bool { return f.Stats().Full > 0 })
	// A negative can only be shown for a while: the second client is not
	// served as long as the first holds the connection.
	select {
	case <-done:
		t.Fatal("second client served while the first held the only connection")
	case <-time.After(200 * time.Millisecond):
	}
	if n := f.Stats().Total; n != 1 {
		t.Fatalf("%d connections accepted, want 1", n)
	}
	first.CloseIdleConnections()
	if got := <-done; got != 200 {
		t.Errorf("second client got %d", got)
	}
}
