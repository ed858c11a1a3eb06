package proxy

import (
	"bufio"
	"context"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"lbd/config"
	"lbd/proxy/balance"
)

var discard = slog.New(slog.DiscardHandler)

// backend is a loopback TCP server that counts connections and answers
// with its name, then echoes until the client half-closes.
type backend struct {
	ln    net.Listener
	name  string
	conns atomic.Int64
	wg    sync.WaitGroup
}

func startBackend(t testing.TB, name string) *backend {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b := &backend{ln: ln, name: name}
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			b.conns.Add(1)
			b.wg.Add(1)
			go func() {
				defer b.wg.Done()
				defer c.Close()
				io.WriteString(c, b.name+"\n")
				io.Copy(c, c)
				c.(*net.TCPConn).CloseWrite()
			}()
		}
	}()
	t.Cleanup(b.stop)
	return b
}

func (b *backend) stop() {
	b.ln.Close()
	b.wg.Wait()
}

func (b *backend) addr() string { return b.ln.Addr().String() }

func dur(d time.Duration) config.Duration { return config.Duration(d) }

func poolConfig(algo string, addrs ...string) config.Pool {
	p := config.Pool{Name: "p", Algorithm: algo, ConnectTimeout: dur(time.Second), DrainTimeout: dur(200 * time.Millisecond)}
	for _, a := range addrs {
		p.Backends = append(p.Backends, config.Backend{Address: a, Weight: 1})
	}
	return p
}

func startFrontend(t testing.TB, fc config.Frontend, pc config.Pool) *TCPFrontend {
	t.Helper()
	pool, err := NewPool(pc, nil, discard)
	if err != nil {
		t.Fatal(err)
	}
	if fc.Bind == "" {
		fc.Bind = "127.0.0.1:0"
	}
	if fc.Name == "" {
		fc.Name = "f"
	}
	f, err := ListenTCP(fc, pool, nil, discard)
	if err != nil {
		t.Fatal(err)
	}
	f.Start()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		f.Close(ctx)
	})
	return f
}

// hello connects through the frontend and returns the backend's name.
func hello(t *testing.T, addr string) string {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		t.Fatalf("reading backend greeting: %v", err)
	}
	return strings.TrimSpace(line)
}

func TestTCPRoundRobinAndEcho(t *testing.T) {
	a, b := startBackend(t, "a"), startBackend(t, "b")
	f := startFrontend(t, config.Frontend{}, poolConfig("round_robin", a.addr(), b.addr()))
	counts := map[string]int{}
	for i := 0; i < 10; i++ {
		counts[hello(t, f.Addr().String())]++
	}
	if counts["a"] != 5 || counts["b"] != 5 {
		t.Errorf("round robin over 10 connections: %v, want 5 and 5", counts)
	}
}

func TestTCPHalfClose(t *testing.T) {
	a := startBackend(t, "a")
	f := startFrontend(t, config.Frontend{}, poolConfig("round_robin", a.addr()))
	c, err := net.Dial("tcp", f.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	payload := strings.Repeat("x", 3<<20) // larger than a chunk
	go func() {
		io.WriteString(c, payload)
		c.(*net.TCPConn).CloseWrite() // the client is done sending
	}()
	got, err := io.ReadAll(c) // the backend echoes, then closes its side
	if err != nil {
		t.Fatalf("reading after half-close: %v", err)
	}
	if string(got) != "a\n"+payload {
		t.Errorf("got %d bytes back, want %d", len(got), len(payload)+2)
	}
	bs := f.Pool().Backends()[0].Stats()
	if bs.BytesIn != uint64(len(payload)) || bs.BytesOut != uint64(len(payload)+2) {
		t.Errorf("backend bytes in/out = %d/%d, want %d/%d", bs.BytesIn, bs.BytesOut, len(payload), len(payload)+2)
	}
}

func TestTCPConnectFailureRetried(t *testing.T) {
	a := startBackend(t, "a")
	dead := startBackend(t, "dead")
	deadAddr := dead.addr()
	dead.stop() // refuses connections from now on
	f := startFrontend(t, config.Frontend{}, poolConfig("round_robin", deadAddr, a.addr()))
	for i := 0; i < 6; i++ {
		if got := hello(t, f.Addr().String()); got != "a" {
			t.Fatalf("connection %d reached %q, want a", i, got)
		}
	}
	if got := f.Pool().Backends()[0].Stats().Failures; got == 0 {
		t.Error("connect failures to the dead backend were not counted")
	}
}

func TestTCPDrain(t *testing.T) {
	a, b := startBackend(t, "a"), startBackend(t, "b")
	f := startFrontend(t, config.Frontend{}, poolConfig("round_robin", a.addr(), b.addr()))
	// A long-lived connection to a.
	var long net.Conn
	for {
		c, err := net.Dial("tcp", f.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		line, _ := bufio.NewReader(c).ReadString('\n')
		if strings.TrimSpace(line) == "a" {
			long = c
			break
		}
		c.Close()
	}
	defer long.Close()
	if err := f.Pool().SetState(a.addr(), balance.StateDraining); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 4; i++ {
		if got := hello(t, f.Addr().String()); got != "b" {
			t.Fatalf("new connection during drain reached %q, want b", got)
		}
	}
	// The open connection still works until drain_timeout cuts it.
	long.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(long, "ping\n")
	r := bufio.NewReader(long)
	if line, err := r.ReadString('\n'); err != nil || line != "ping\n" {
		t.Fatalf("draining connection: %q, %v", line, err)
	}
	if _, err := r.ReadString('\n'); err == nil {
		t.Fatal("connection still open after drain_timeout")
	}
}

func TestTCPMaxConnectionsAndNoLeak(t *testing.T) {
	a := startBackend(t, "a")
	before := runtime.NumGoroutine()
	f := startFrontend(t, config.Frontend{MaxConnections: 2, IdleTimeout: dur(300 * time.Millisecond)}, poolConfig("round_robin", a.addr()))
	var conns []net.Conn
	for i := 0; i < 2; i++ {
		c, err := net.Dial("tcp", f.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
	}
	// The third is queued in the kernel's backlog, not served, until a
	// slot frees.
	third, err := net.Dial("tcp", f.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer third.Close()
	deadline := time.Now().Add(10 * time.Second)
	for f.Stats().Full == 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if f.Stats().Full == 0 {
		t.Fatal("frontend never reported max_connections reached")
	}
	if got := f.Stats().Active; got != 2 {
		t.Errorf("active = %d, want 2", got)
	}
	conns[0].Close()
	third.SetDeadline(time.Now().Add(10 * time.Second))
	if line, err := bufio.NewReader(third).ReadString('\n'); err != nil || line != "a\n" {
		t.Fatalf("queued connection after a slot freed: %q, %v", line, err)
	}
	// Silent clients are cut by idle_timeout; nothing is left running.
	for _, c := range conns[1:] {
		c.Close()
	}
	deadline = time.Now().Add(10 * time.Second)
	for f.Stats().Active != 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if got := f.Stats().Active; got != 0 {
		t.Errorf("active = %d after clients left, want 0", got)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	f.Close(ctx)
	deadline = time.Now().Add(10 * time.Second)
	for runtime.NumGoroutine() > before+2 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before+2 {
		t.Errorf("goroutines: %d before, %d after the frontend closed", before, n)
	}
}

func TestTCPProxyProtocol(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	got := make(chan string, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(5 * time.Second))
		line, _ := bufio.NewReader(c).ReadString('\n')
		got <- line
	}()
	f := startFrontend(t, config.Frontend{ProxyProtocol: "v1"}, poolConfig("round_robin", ln.Addr().String()))
	c, err := net.Dial("tcp", f.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	want := "PROXY TCP4 127.0.0.1 127.0.0.1 " + strings.Split(c.LocalAddr().String(), ":")[1] + " " + strings.Split(f.Addr().String(), ":")[1] + "\r\n"
	select {
	case line := <-got:
		if line != want {
			t.Errorf("backend got %q, want %q", line, want)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("backend got no PROXY header")
	}
}

func TestTCPSourceIPPersistence(t *testing.T) {
	a, b := startBackend(t, "a"), startBackend(t, "b")
	pc := poolConfig("round_robin", a.addr(), b.addr())
	pc.Sticky = config.Sticky{SourceIP: true, TTL: dur(time.Hour)}
	aff := NewLocalAffinity()
	pool, err := NewPool(pc, nil, discard)
	if err != nil {
		t.Fatal(err)
	}
	f, err := ListenTCP(config.Frontend{Name: "f", Bind: "127.0.0.1:0"}, pool, aff, discard)
	if err != nil {
		t.Fatal(err)
	}
	f.Start()
	defer f.Close(context.Background())
	first := hello(t, f.Addr().String())
	for i := 0; i < 6; i++ {
		if got := hello(t, f.Addr().String()); got != first {
			t.Fatalf("connection %d from the same client reached %s, first went to %s (round robin would alternate)", i, got, first)
		}
	}
	if got, ok := aff.Lookup(SourceIPKey("p", netip.MustParseAddr("127.0.0.1"))); !ok || got == "" {
		t.Errorf("no persistence entry stored: %q %v", got, ok)
	}
	// The remembered backend goes down: the client moves, and stays.
	pool.SetState(map[string]string{"a": a.addr(), "b": b.addr()}[first], balance.StateDisabled)
	moved := hello(t, f.Addr().String())
	if moved == first {
		t.Fatalf("client still sent to disabled backend %s", first)
	}
	if got := hello(t, f.Addr().String()); got != moved {
		t.Errorf("after moving to %s the client went to %s", moved, got)
	}
}

func TestTCPHalfCloseEarly(t *testing.T) {
	a := startBackend(t, "a")
	f := startFrontend(t, config.Frontend{}, poolConfig("round_robin", a.addr()))
	for _, tc := range []struct{ name, send string }{
		{"nothing sent", ""},
		{"a few bytes then FIN", "hi"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := net.Dial("tcp", f.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(10 * time.Second))
			io.WriteString(c, tc.send)
			c.(*net.TCPConn).CloseWrite() // at once, likely before the backend is connected
			got, err := io.ReadAll(c)
			if err != nil {
				t.Fatalf("reading after half-close: %v", err)
			}
			if diff := cmp.Diff("a\n"+tc.send, string(got)); diff != "" {
				t.Errorf("client got (-want +got):\n%s", diff)
			}
		})
	}
}

func TestTCPIdleTimeout(t *testing.T) {
	const idle = 300 * time.Millisecond
	a := startBackend(t, "a")
	f := startFrontend(t, config.Frontend{IdleTimeout: dur(idle)}, poolConfig("round_robin", a.addr()))

	// A client that keeps talking stays connected well past idle_timeout.
	busy, err := net.Dial("tcp", f.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	busy.SetDeadline(time.Now().Add(10 * time.Second))
	r := bufio.NewReader(busy)
	if _, err := r.ReadString('\n'); err != nil {
		t.Fatal(err)
	}
	// A silent client is cut after idle_timeout, not before.
	silent, err := net.Dial("tcp", f.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	start := time.Now()
	for end := start.Add(3 * idle); time.Now().Before(end); {
		io.WriteString(busy, "ping\n")
		if line, err := r.ReadString('\n'); err != nil || line != "ping\n" {
			t.Fatalf("busy client after %v: %q, %v", time.Since(start), line, err)
		}
		time.Sleep(idle / 6) // the traffic under test: a message every idle/6
	}
	silent.SetDeadline(time.Now().Add(10 * time.Second))
	got, err := io.ReadAll(silent)
	took := time.Since(start)
	if err != nil {
		t.Fatalf("silent client: %v (want EOF after idle_timeout)", err)
	}
	if string(got) != "a\n" {
		t.Errorf("silent client got %q, want the greeting then EOF", got)
	}
	if took < idle {
		t.Errorf("silent client cut after %v, before idle_timeout %v", took, idle)
	}
}

func TestTCPCloseCutsSessions(t *testing.T) {
	a := startBackend(t, "a")
	before := runtime.NumGoroutine()
	pool, err := NewPool(poolConfig("round_robin", a.addr()), nil, discard)
	if err != nil {
		t.Fatal(err)
	}
	f, err := ListenTCP(config.Frontend{Name: "f", Bind: "127.0.0.1:0"}, pool, nil, discard)
	if err != nil {
		t.Fatal(err)
	}
	f.Start()
	c, err := net.Dial("tcp", f.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	r := bufio.NewReader(c)
	if _, err := r.ReadString('\n'); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := f.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := r.ReadString('\n'); err == nil {
		t.Error("the session survived Close past its context")
	}
	if got := f.Stats().Active; got != 0 {
		t.Errorf("active = %d after Close, want 0", got)
	}
	if _, err := net.DialTimeout("tcp", f.Addr().String(), time.Second); err == nil {
		t.Error("the frontend still accepts after Close")
	}
	deadline := time.Now().Add(10 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before {
		t.Errorf("goroutines: %d before, %d after Close", before, n)
	}
}

func TestTCPHostNameBackend(t *testing.T) {
	a := startBackend(t, "a") // on 127.0.0.1 only: "localhost" may say ::1 first
	_, port, _ := net.SplitHostPort(a.addr())
	f := startFrontend(t, config.Frontend{}, poolConfig("round_robin", net.JoinHostPort("localhost", port)))
	for i := 0; i < 3; i++ {
		if got := hello(t, f.Addr().String()); got != "a" {
			t.Fatalf("connection %d reached %q, want a", i, got)
		}
	}
}

func TestTCPManyClientsAtOnce(t *testing.T) {
	a, b := startBackend(t, "a"), startBackend(t, "b")
	f := startFrontend(t, config.Frontend{}, poolConfig("round_robin", a.addr(), b.addr()))
	const clients = 200
	var wg sync.WaitGroup
	var got sync.Map
	for i := range clients {
		wg.Go(func() {
			c, err := net.DialTimeout("tcp", f.Addr().String(), 5*time.Second)
			if err != nil {
				t.Error(err)
				return
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(10 * time.Second))
			msg := strings.Repeat(string(rune('a'+i%26)), 1+i*97%40000) // both small and bulk
			go func() {
				io.WriteString(c, msg)
				c.(*net.TCPConn).CloseWrite()
			}()
			all, err := io.ReadAll(c)
			if err != nil {
				t.Error(err)
				return
			}
			name, body, _ := strings.Cut(string(all), "\n")
			if body != msg {
				t.Errorf("client %d: %d bytes back, want %d", i, len(body), len(msg))
			}
			got.Store(i, name)
		})
	}
	wg.Wait()
	counts := map[string]int{}
	got.Range(func(_, v any) bool { counts[v.(string)]++; return true })
	if diff := cmp.Diff(map[string]int{"a": clients / 2, "b": clients / 2}, counts); diff != "" {
		t.Errorf("connections per backend (-want +got):\n%s", diff)
	}
	var in, out uint64
	for _, be := range f.Pool().Backends() {
		st := be.Stats()
		in, out = in+st.BytesIn, out+st.BytesOut
	}
	if out != in+2*clients {
		t.Errorf("bytes out %d, want bytes in %d + the greetings %d", out, in, 2*clients)
	}
}
