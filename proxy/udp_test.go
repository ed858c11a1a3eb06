package proxy

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"lbd/config"
)

// udpBackend answers every datagram with its name and the payload.
func udpBackend(t *testing.T, name string) *net.UDPConn {
	t.Helper()
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		buf := make([]byte, 2048)
		for {
			n, from, err := c.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			c.WriteToUDPAddrPort(append([]byte(name+":"), buf[:n]...), from)
		}
	}()
	t.Cleanup(func() { c.Close() })
	return c
}

func TestUDPFlowsStickToBackend(t *testing.T) {
	a, b := udpBackend(t, "a"), udpBackend(t, "b")
	pool, err := NewPool(poolConfig("round_robin", a.LocalAddr().String(), b.LocalAddr().String()), nil, discard)
	if err != nil {
		t.Fatal(err)
	}
	f, err := ListenUDP(config.Frontend{Name: "dns", Bind: "127.0.0.1:0", Mode: "udp", IdleTimeout: dur(200 * time.Millisecond)}, pool, nil, discard)
	if err != nil {
		t.Fatal(err)
	}
	f.Start()
	defer f.Close(context.Background())

	seen := map[string]int{}
	for client := 0; client < 4; client++ {
		c, err := net.DialUDP("udp", nil, f.Addr().(*net.UDPAddr))
		if err != nil {
			t.Fatal(err)
		}
		var first string
		for q := 0; q < 5; q++ {
			c.SetDeadline(time.Now().Add(5 * time.Second))
			if _, err := c.Write([]byte("query")); err != nil {
				t.Fatal(err)
			}
			buf := make([]byte, 100)
			n, from, err := c.ReadFromUDP(buf)
			if err != nil {
				t.Fatalf("client %d query %d: %v", client, q, err)
			}
			if from.String() != f.Addr().String() {
				t.Errorf("reply came from %s, want the frontend address %s", from, f.Addr())
			}
			got := string(buf[:n])
			name, payload, _ := strings.Cut(got, ":")
			if payload != "query" {
				t.Errorf("reply %q", got)
			}
			if q == 0 {
				first = name
			} else if name != first {
				t.Errorf("client %d moved from backend %s to %s within its flow", client, first, name)
			}
		}
		seen[first]++
		c.Close()
	}
	if seen["a"] != 2 || seen["b"] != 2 {
		t.Errorf("4 flows over round robin: %v, want 2 and 2", seen)
	}
	// Idle flows expire.
	deadline := time.Now().Add(10 * time.Second)
	for f.Flows() != 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if n := f.Flows(); n != 0 {
		t.Errorf("%d flows left after idle_timeout", n)
	}
	for _, bk := range pool.Backends() {
		if bk.Active() != 0 {
			t.Errorf("backend %s still counts %d active flows", bk.Address(), bk.Active())
		}
	}
}

// TestUDPServing: a UDP frontend whose socket closes under it (not by
// Close) no longer serves, for the proxy track; one closed by Close does.
func TestUDPServing(t *testing.T) {
	pool, err := NewPool(poolConfig("round_robin", "127.0.0.1:9"), nil, discard)
	if err != nil {
		t.Fatal(err)
	}
	for _, byClose := range []bool{false, true} {
		f, err := ListenUDP(config.Frontend{Name: "dns", Bind: "127.0.0.1:0", Mode: "udp"}, pool, nil, discard)
		if err != nil {
			t.Fatal(err)
		}
		f.Start()
		if !f.Serving() {
			t.Fatal("a new UDP frontend does not serve")
		}
		if byClose {
			f.Close(context.Background())
			if !f.Serving() {
				t.Error("a UDP frontend stopped by Close counts as failed")
			}
			continue
		}
		f.conn.Close()
		deadline := time.Now().Add(5 * time.Second)
		for f.Serving() {
			if time.Now().After(deadline) {
				t.Fatal("still serving after its socket closed")
			}
			time.Sleep(time.Millisecond)
		}
		f.Close(context.Background())
	}
}
