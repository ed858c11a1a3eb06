package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"lbd/lab"
)

// streamer greets with its name, then serves one command: "stream N" sends
// N bytes in 64 KiB pieces, 20 ms apart; anything else closes.
func streamer(t *testing.T, h *lab.Host, addr string) func() {
	ln, err := h.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				defer c.Close()
				fmt.Fprintf(c, "%s\n", h.Name)
				line, err := bufio.NewReader(c).ReadString('\n')
				if err != nil {
					return
				}
				if n, ok := strings.CutPrefix(strings.TrimSpace(line), "stream "); ok {
					left, _ := strconv.Atoi(n)
					buf := make([]byte, 64<<10)
					for left > 0 {
						k := min(left, len(buf))
						if _, err := c.Write(buf[:k]); err != nil {
							return
						}
						left -= k
						time.Sleep(20 * time.Millisecond)
					}
				}
			})
		}
	})
	stop := func() { ln.Close() }
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	return stop
}

const l4Config = `
[node]
name = "lb1"
admin_socket = "%[1]s/lbd.sock"
state_dir = "%[1]s/state"

[[frontend]]
name = "tcp"
bind = "198.18.0.100:7000"
mode = "tcp"
default_pool = "app"

[[frontend]]
name = "dns"
bind = "198.18.0.100:5353"
mode = "udp"
default_pool = "dns"
idle_timeout = "2s"

[[pool]]
name = "app"
algorithm = "%[2]s"
connect_timeout = "1s"
drain_timeout = "60s"
  [[pool.backend]]
  address = "198.18.0.21:8080"
  weight = 1
  [[pool.backend]]
  address = "198.18.0.22:8080"
  weight = %[3]d

[[pool]]
name = "dns"
  [[pool.backend]]
  address = "198.18.0.21:5353"
  [[pool.backend]]
  address = "198.18.0.22:5353"
`

// TestL4InLab: a client reaches two backends through lbd's TCP and UDP
// frontends on a VIP-style address lbd binds with IP_FREEBIND; each
// algorithm's distribution shows in the backends' counts; a dead backend
// is skipped without the client noticing; drain lets a long transfer
// finish and sends new connections elsewhere; UDP flows keep their backend.
func TestL4InLab(t *testing.T) {
	lbdBin, lbctlBin := binaries(t)
	l := lab.New(t)
	lb := l.AddHostAddr("lb1", 11)
	client := l.AddHostAddr("client", 50)
	be := []*lab.Host{l.AddHostAddr("be1", 21), l.AddHostAddr("be2", 22)}
	stops := []func(){streamer(t, be[0], "198.18.0.21:8080"), streamer(t, be[1], "198.18.0.22:8080")}
	for _, h := range be {
		udpEcho(t, h)
	}
	// The client reaches the VIP-style address through lb1.
	if _, err := client.Run(t.Context(), "ip", "route", "add", "198.18.0.100/32", "via", "198.18.0.11"); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "lbd.toml")
	var proc *lab.Proc
	start := func(algo string, weight2 int) {
		t.Helper()
		os.WriteFile(cfgPath, []byte(fmt.Sprintf(l4Config, dir, algo, weight2)), 0o644)
		if proc == nil {
			var err error
			if proc, err = lb.Start(lbdBin, "-config", cfgPath); err != nil {
				t.Fatal(err)
			}
			if err := proc.WaitOutput("lbd started", 30*time.Second); err != nil {
				t.Fatal(err)
			}
			// Local delivery of the VIP-style address on lb1, as a VIP.
			if _, err := lb.Run(t.Context(), "ip", "addr", "add", "198.18.0.100/32", "dev", "lo"); err != nil {
				t.Fatal(err)
			}
			return
		}
		out, err := lbctl(lbctlBin, dir, "reload")
		if err != nil {
			t.Fatalf("reload: %v %s", err, out)
		}
	}
	greet := func() (string, net.Conn) {
		c, err := client.Dial("tcp", "198.18.0.100:7000")
		if err != nil {
			return "error: " + err.Error(), nil
		}
		c.SetDeadline(time.Now().Add(10 * time.Second))
		line, err := bufio.NewReader(c).ReadString('\n')
		if err != nil {
			c.Close()
			return "error: " + err.Error(), nil
		}
		return strings.TrimSpace(line), c
	}
	count := func(n int) map[string]int {
		seen := map[string]int{}
		for i := 0; i < n; i++ {
			who, c := greet()
			seen[who]++
			if c != nil {
				io.WriteString(c, "bye\n")
				c.Close()
			}
		}
		return seen
	}

	for _, tc := range []struct {
		algo         string
		weight2      int
		want1, want2 int
	}{
		{"round_robin", 1, 50, 50},
		{"weighted_round_robin", 3, 25, 75},
	} {
		start(tc.algo, tc.weight2)
		got := count(100)
		if got["be1"] != tc.want1 || got["be2"] != tc.want2 {
			t.Errorf("%s (weights 1:%d) over 100 connections: %v, want be1 %d be2 %d", tc.algo, tc.weight2, got, tc.want1, tc.want2)
		}
	}
	// least_conn: connections held open spread evenly.
	start("least_conn", 1)
	held := map[string]int{}
	for i := 0; i < 10; i++ {
		who, c := greet()
		held[who]++
		if c != nil {
			defer c.Close()
		}
	}
	if held["be1"] != 5 || held["be2"] != 5 {
		t.Errorf("least_conn with 10 connections held open: %v, want 5 and 5", held)
	}
	start("ip_hash", 1)
	got := count(20)
	if len(got) != 1 {
		t.Errorf("ip_hash sent one client to %v, want one backend", got)
	}

	// be2 dies: new connections go to be1, none fails.
	start("round_robin", 1)
	stops[1]()
	if got := count(20); got["be1"] != 20 {
		t.Errorf("with be2 dead: %v, want all 20 on be1 and no error", got)
	}
	stops[1] = streamer(t, be[1], "198.18.0.22:8080")

	// Drain be1 during a long transfer from it.
	var long net.Conn
	for long == nil {
		who, c := greet()
		if who == "be1" {
			long = c
		} else if c != nil {
			c.Close()
		}
	}
	const size = 4 << 20 // 64 pieces, about 1.3 s
	io.WriteString(long, fmt.Sprintf("stream %d\n", size))
	out, err := lbctl(lbctlBin, dir, "drain", "app", "198.18.0.21:8080")
	if err != nil || !strings.Contains(out, "draining") {
		t.Fatalf("lbctl drain: %v %s", err, out)
	}
	if got := count(10); got["be2"] != 10 {
		t.Errorf("new connections while be1 drains: %v, want all on be2", got)
	}
	long.SetDeadline(time.Now().Add(30 * time.Second))
	n, err := io.Copy(io.Discard, long)
	if err != nil || n != size {
		t.Errorf("long transfer during drain: %d bytes, %v; want %d", n, err, size)
	}
	long.Close()

	// UDP: each client flow stays on one backend.
	for i := 0; i < 4; i++ {
		pc, err := client.ListenPacket("udp", "198.18.0.50:0")
		if err != nil {
			t.Fatal(err)
		}
		var first string
		for q := 0; q < 5; q++ {
			pc.SetDeadline(time.Now().Add(5 * time.Second))
			dst, _ := net.ResolveUDPAddr("udp", "198.18.0.100:5353")
			pc.WriteTo([]byte("query"), dst)
			buf := make([]byte, 512)
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				t.Fatalf("udp flow %d query %d: %v", i, q, err)
			}
			if from.String() != "198.18.0.100:5353" {
				t.Errorf("udp reply from %v, want the frontend address", from)
			}
			who := strings.Fields(string(buf[:n]))[0]
			if q == 0 {
				first = who
			} else if who != first {
				t.Errorf("udp flow %d moved from %s to %s", i, first, who)
			}
		}
		pc.Close()
	}
}

func lbctl(bin, dir string, args ...string) (string, error) {
	out, err := execCommand(bin, append([]string{"-socket", filepath.Join(dir, "lbd.sock")}, args...)...)
	return out, err
}
