package httpproxy

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
	"net"
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
)

// hashBackend answers with the length and SHA-256 of the request body,
// and signals on first when the first body bytes arrive.
func hashBackend(t *testing.T, first chan<- struct{}) *backend {
	return startBackend(t, "hash", func(w http.ResponseWriter, r *http.Request) {
		h := sha256.New()
		buf := make([]byte, 64<<10)
		n, err := r.Body.Read(buf)
		h.Write(buf[:n])
		if first != nil {
			first <- struct{}{}
		}
		total := int64(n)
		if err == nil {
			m, err2 := io.CopyBuffer(h, r.Body, buf)
			total += m
			err = err2
		}
		if err != nil && err != io.EOF {
			http.Error(w, err.Error(), 400)
			return
		}
		fmt.Fprintf(w, "%d %x %q", total, h.Sum(nil), r.TransferEncoding)
	})
}

// pattern writes n bytes of a repeating pattern to w (and to h) in
// pieces of size chunk, framed as chunks when chunked, calling after
// once the first piece is written.
func pattern(w io.Writer, h hash.Hash, n, chunk int, chunked bool, after func()) error {
	buf := make([]byte, chunk)
	for i := range buf {
		buf[i] = byte(i * 7)
	}
	for sent := 0; sent < n; {
		p := buf[:min(chunk, n-sent)]
		if chunked {
			if _, err := fmt.Fprintf(w, "%x\r\n", len(p)); err != nil {
				return err
			}
		}
		if _, err := w.Write(p); err != nil {
			return err
		}
		if chunked {
			if _, err := io.WriteString(w, "\r\n"); err != nil {
				return err
			}
		}
		h.Write(p)
		if sent == 0 && after != nil {
			after()
		}
		sent += len(p)
	}
	if chunked {
		_, err := io.WriteString(w, "0\r\nX-Trailer: dropped\r\n\r\n")
		return err
	}
	return nil
}

// TestStreamedUpload sends a large body, chunked and with a length: the
// backend gets it whole and intact, starts receiving before the client
// has sent the rest (streamed, not buffered), and the proxy's memory does
// not grow with the body.
func TestStreamedUpload(t *testing.T) {
	const size = 64 << 20
	for _, chunked := range []bool{true, false} {
		t.Run(fmt.Sprintf("chunked=%v", chunked), func(t *testing.T) {
			first := make(chan struct{}, 1)
			b := hashBackend(t, first)
			f, _ := simple(t, "", b)
			c := dial(t, f)
			defer c.Close()
			c.SetDeadline(time.Now().Add(60 * time.Second))
			head := "POST /upload HTTP/1.1\r\nHost: h\r\n"
			if chunked {
				head += "Transfer-Encoding: chunked\r\n\r\n"
			} else {
				head += "Content-Length: " + strconv.Itoa(size) + "\r\n\r\n"
			}
			io.WriteString(c, head)
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			h := sha256.New()
			err := pattern(c, h, size, 64<<10, chunked, func() {
				select {
				case <-first:
				case <-time.After(30 * time.Second):
					t.Error("the backend got nothing while the client was still sending")
				}
			})
			if err != nil {
				t.Fatal(err)
			}
			_, body := readResponse(t, bufio.NewReader(c))
			runtime.ReadMemStats(&after)
			te := `[]`
			if chunked {
				te = `["chunked"]`
			}
			want := fmt.Sprintf("%d %x %s", size, h.Sum(nil), te)
			if body != want {
				t.Errorf("backend saw %q, want %q", body, want)
			}
			// The test's client and backend allocate a little per 64 KiB
			// piece; a proxy that buffered the body would add 64 MiB.
			t.Logf("allocated %d KiB", (after.TotalAlloc-before.TotalAlloc)>>10)
			if grew := after.TotalAlloc - before.TotalAlloc; grew > 4<<20 {
				t.Errorf("%d MiB allocated while moving a %d MiB body", grew>>20, size>>20)
			}
		})
	}
}

// TestExpectContinue: the backend's 100 Continue reaches the client
// before the client sends its body.
func TestExpectContinue(t *testing.T) {
	b := hashBackend(t, nil)
	f, _ := simple(t, "", b)
	c := dial(t, f)
	defer c.Close()
	io.WriteString(c, "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")
	br := bufio.NewReader(c)
	line, err := br.ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "HTTP/1.1 100 ") {
		t.Fatalf("got %q, %v; want 100 Continue before the body", line, err)
	}
	if rest, _ := readHead(br); rest != "\r\n" {
		t.Fatalf("interim response fields %q", rest)
	}
	io.WriteString(c, "hello")
	resp, body := readResponse(t, br)
	if !strings.HasPrefix(body, "5 ") {
		t.Errorf("got %d %q", resp.StatusCode, body)
	}
}

// TestEarlyResponse: a backend may answer before it has read the body;
// the client gets that answer, and the connection is closed since the
// rest of its body was never read.
func TestEarlyResponse(t *testing.T) {
	b := startBackend(t, "b", func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "too large", http.StatusRequestEntityTooLarge)
	})
	f, _ := simple(t, "", b)
	c := dial(t, f)
	defer c.Close()
	io.WriteString(c, "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 100000000\r\n\r\n")
	c.Write(make([]byte, 1<<20))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 413 {
		t.Errorf("status %d, want 413", resp.StatusCode)
	}
}

// TestSlowReader: a client that stops reading cannot make the proxy read
// (and buffer) the backend's response without bound: the backend's
// writes block once the socket buffers are full.
func TestSlowReader(t *testing.T) {
	const size = 1 << 30
	stalled := make(chan int64, 1)
	b := startBackend(t, "b", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", strconv.Itoa(size))
		rc := http.NewResponseController(w)
		buf := make([]byte, 64<<10)
		var n int64
		for n < size {
			rc.SetWriteDeadline(time.Now().Add(500 * time.Millisecond))
			m, err := w.Write(buf)
			n += int64(m)
			if err != nil {
				break
			}
		}
		stalled <- n
	})
	f, _ := simple(t, "", b)
	c := dial(t, f)
	defer c.Close()
	c.(*net.TCPConn).SetReadBuffer(64 << 10)
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: h\r\n\r\n")
	var n int64
	select {
	case n = <-stalled:
	case <-time.After(60 * time.Second):
		t.Fatal("the backend never stalled: the proxy reads without bound")
	}
	// Socket buffers on loopback grow to a few MiB each; the proxy's own
	// buffers are 32 KiB.
	t.Logf("backend wrote %d MiB", n>>20)
	if n > 64<<20 {
		t.Errorf("the backend wrote %d MiB before stalling", n>>20)
	}
}

// TestWebSocket tunnels an upgraded connection both ways; the backend
// counts it active for as long as it is open.
func TestWebSocket(t *testing.T) {
	seen := make(chan string, 1)
	s := startScripted(t, func(c net.Conn, r *bufio.Reader) {
		head, err := readHead(r)
		if err != nil {
			return
		}
		seen <- head
		io.WriteString(c, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\nwelcome ")
		io.Copy(c, r) // echo
		c.(*net.TCPConn).CloseWrite()
	})
	f, pools := simple(t, `algorithm = "least_conn"`, &backend{addr: s.addr})
	c := dial(t, f)
	defer c.Close()
	io.WriteString(c, "GET /chat HTTP/1.1\r\nHost: h\r\nConnection: keep-alive, Upgrade\r\nUpgrade: websocket\r\n"+
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 101 || resp.Header.Get("Upgrade") != "websocket" || resp.Header.Get("X-Request-ID") == "" {
		t.Fatalf("got %d %v", resp.StatusCode, resp.Header)
	}
	head := <-seen
	for _, want := range []string{"\r\nUpgrade: websocket\r\n", "\r\nConnection: Upgrade\r\n", "Sec-WebSocket-Key: "} {
		if !strings.Contains(head, want) {
			t.Errorf("backend head %q lacks %q", head, want)
		}
	}
	be := pools["app"].Backends()[0]
	if n := be.Active(); n != 1 {
		t.Errorf("backend active = %d during the tunnel, want 1", n)
	}
	io.WriteString(c, "ping")
	got := make([]byte, len("welcome ping"))
	if _, err := io.ReadFull(br, got); err != nil || string(got) != "welcome ping" {
		t.Fatalf("read %q, %v", got, err)
	}
	c.(*net.TCPConn).CloseWrite()
	if rest, err := io.ReadAll(br); err != nil || len(rest) != 0 {
		t.Errorf("after close: %q %v", rest, err)
	}
	waitFor(t, "the tunnel to end", func() bool { return be.Active() == 0 })
}

// TestChunkedResponsePassThrough: a chunked response reaches an HTTP/1.1
// client chunked, trailers included, and the connection is reused.
func TestChunkedResponsePassThrough(t *testing.T) {
	b := startBackend(t, "b", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Trailer", "X-Sum")
		for i := 0; i < 3; i++ {
			fmt.Fprintf(w, "part%d;", i)
			w.(http.Flusher).Flush()
		}
		w.Header().Set("X-Sum", "3")
	})
	f, _ := simple(t, "", b)
	c := client(f)
	for i := 0; i < 2; i++ {
		resp, body := get(t, c, "http://x/")
		if body != "part0;part1;part2;" || resp.Trailer.Get("X-Sum") != "3" {
			t.Errorf("body %q trailer %v", body, resp.Trailer)
		}
	}
	if n := b.ln.accepts.Load(); n != 1 {
		t.Errorf("%d backend connections, want 1", n)
	}
	_ = hex.EncodeToString
}
