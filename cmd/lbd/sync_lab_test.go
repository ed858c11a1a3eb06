package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"lbd/lab"
)

// TestClusterKeepsUDPFlows: two nodes in a [cluster] (memberlist with a
// key) see each other as members; 10,000 UDP flows pinned to backends
// through the master, and 10,000 L4 clients (each its own source address)
// with source_ip persistence, keep their backends through the new master
// after a demote, and again after a SIGKILL of the master, because the
// tables are replicated.
func TestClusterKeepsUDPFlows(t *testing.T) {
	p := newBarePair(t)
	bes := []*lab.Host{p.l.AddHostAddr("be1", 21), p.l.AddHostAddr("be2", 22)}
	for _, h := range bes {
		greeter(t, h, h.IPv4.String()+":9000")
	}
	const clients = 10000
	addClients(t, p.client, clients, p.lb[0], p.lb[1])
	for _, h := range bes {
		udpEcho(t, h)
	}
	cluster := pairCluster(t)
	p.startWith(t, func(i int, cfg string) string {
		cfg = cluster(i, cfg)
		return cfg + `
[[frontend]]
name = "dns"
bind = "198.18.0.100:5353"
mode = "udp"
default_pool = "dns"
idle_timeout = "600s"

[[pool]]
name = "dns"
algorithm = "random"
  [[pool.backend]]
  address = "198.18.0.21:5353"
  [[pool.backend]]
  address = "198.18.0.22:5353"

[[frontend]]
name = "db"
bind = "198.18.0.100:7000"
mode = "tcp"
default_pool = "db"
` + sourceIPPoolTOML
	})
	p.waitClustered(t)

	// One UDP flow per client address, from port 40000: a flow is the
	// client's address and port, so a new socket on the same pair is the
	// same flow.
	ask := func(i int) string {
		pc, err := p.client.ListenPacket("udp", netip.AddrPortFrom(clientAddr(i), 40000).String())
		if err != nil {
			return "error: " + err.Error()
		}
		defer pc.Close()
		dst, _ := net.ResolveUDPAddr("udp", "198.18.0.100:5353")
		buf := make([]byte, 512)
		for try := 0; try < 20; try++ {
			pc.SetDeadline(time.Now().Add(500 * time.Millisecond))
			pc.WriteTo([]byte("q"), dst)
			if n, _, err := pc.ReadFrom(buf); err == nil {
				return strings.Fields(string(buf[:n]))[0]
			}
		}
		return "no answer"
	}
	askAll := func() map[int]string {
		var mu sync.Mutex
		out := make(map[int]string, clients)
		var wg sync.WaitGroup
		for w := range 8 {
			wg.Go(func() {
				for i := w; i < clients; i += 8 {
					got := ask(i)
					mu.Lock()
					out[i] = got
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		return out
	}
	greetVIP := func(int) string { return "198.18.0.100:7000" }
	flows := askAll()
	persisted := greetAll(p.client, 0, clients, greetVIP)
	for i := range clients {
		if flows[i] != "be1" && flows[i] != "be2" {
			t.Fatalf("flow %d through lb1: %s", i, flows[i])
		}
		if persisted[i] != "be1" && persisted[i] != "be2" {
			t.Fatalf("client %d through lb1: %s", i, persisted[i])
		}
	}
	for i, got := range greetAll(p.client, 0, 500, greetVIP) {
		if got != persisted[i] {
			t.Errorf("client %d: %s then %s through lb1 with source_ip persistence", i, persisted[i], got)
		}
	}
	check := func(phase string) {
		t.Helper()
		for _, c := range []struct {
			what string
			got  map[int]string
			want map[int]string
		}{
			{"UDP flows", askAll(), flows},
			{"source_ip clients", greetAll(p.client, 0, clients, greetVIP), persisted},
		} {
			mismatches := 0
			for i := range clients {
				if c.got[i] != c.want[i] {
					if mismatches++; mismatches <= 3 {
						t.Errorf("%s: %s %d: %s before, %s now", phase, c.what, i, c.want[i], c.got[i])
					}
				}
			}
			t.Logf("%s: %d of %d %s reached another backend", phase, mismatches, clients, c.what)
			if mismatches != 0 {
				t.Errorf("%s: %d of %d %s reached another backend", phase, mismatches, clients, c.what)
			}
		}
	}
	p.lbctlRun(0, "demote")
	lab.Eventually(t, 10*time.Second, func() (bool, string) { return p.state(1) == "MASTER", "lb2 is " + p.state(1) })
	// Wait until lb1 has let go, so the flows surely go through lb2.
	lab.Eventually(t, 10*time.Second, func() (bool, string) { return !p.holdsVIP(0), "lb1 still holds the VIP" })
	check("after demote")
	// lbctl sessions on lb2 counts the pool's entries.
	if out := p.lbctlRun(1, "sessions", "db"); !strings.Contains(out, fmt.Sprintf("source-ip  %d", clients)) {
		t.Errorf("lbctl sessions db:\n%s", out)
	}

	// VRRP's second opinion: with lb1 master again, a firewall on lb2 drops
	// protocol 112, so lb2 stops hearing lb1 and takes over; memberlist
	// still sees lb1 alive, and lb2 says so loudly.
	p.lbctlRun(0, "promote")
	lab.Eventually(t, 10*time.Second, func() (bool, string) { return p.state(0) == "MASTER", "lb1 is " + p.state(0) })
	if err := p.lb[1].DropProto(112); err != nil {
		t.Fatal(err)
	}
	if err := p.proc[1].WaitOutput("cluster sees the master alive", 15*time.Second); err != nil {
		t.Error(err)
	}
	p.lb[1].UndropProto(112)
	lab.Eventually(t, 10*time.Second, func() (bool, string) {
		return p.state(0) == "MASTER" && p.state(1) == "BACKUP" && !p.holdsVIP(1), "lb1 " + p.state(0) + ", lb2 " + p.state(1)
	})

	// lb1, the master, crashes: lb2 takes over with the same tables.
	p.proc[0].Signal(syscall.SIGKILL)
	p.proc[0].Wait(10 * time.Second)
	p.proc[0] = nil
	lab.Eventually(t, 10*time.Second, func() (bool, string) { return p.state(1) == "MASTER", "lb2 is " + p.state(1) })
	lab.Eventually(t, 10*time.Second, func() (bool, string) {
		mac, _ := p.client.Neighbor(vip)
		return mac.String() == p.lb[1].MAC.String(), fmt.Sprintf("client neighbour %v", mac)
	})
	check("after SIGKILL of the master")
}

// TestClusterKeepsStickySessions: 10,000 clients get sticky cookies through
// the master; after `lbctl demote`, and again after a SIGKILL of the new
// master, every client reaches the backend it had, through whichever node
// holds the VIP: the cookie → backend table is replicated.
func TestClusterKeepsStickySessions(t *testing.T) {
	p := newBarePair(t)
	for i := 0; i < 2; i++ {
		b := &httpBackend{h: p.l.AddHostAddr(fmt.Sprintf("be%d", i+1), 21+i), hits: map[string]int{}}
		b.start(t)
		t.Cleanup(b.stop)
	}
	cluster := pairCluster(t)
	p.startWith(t, func(i int, cfg string) string {
		cfg = cluster(i, cfg)
		cfg = strings.Replace(cfg, `mode = "tcp"`, `mode = "http"`, 1)
		cfg = strings.Replace(cfg, `algorithm = "round_robin"`, `algorithm = "random"`, 1)
		return strings.Replace(cfg, `  [[pool.backend]]
  address = "198.18.0.21:8080"`, `  [pool.sticky]
  cookie = "LBSRV"
  ttl = "1h"
  [[pool.backend]]
  address = "198.18.0.21:8080"
  [[pool.backend]]
  address = "198.18.0.22:8080"`, 1)
	})
	p.waitClustered(t)
	hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		MaxIdleConnsPerHost: 4,
		DialContext: func(_ context.Context, network, addr string) (net.Conn, error) {
			return p.client.Dial(network, addr)
		},
	}}
	get := func(cookie string) (backend, setCookie string, err error) {
		req, _ := http.NewRequest("GET", "http://198.18.0.100/", nil)
		if cookie != "" {
			req.Header.Set("Cookie", "LBSRV="+cookie)
		}
		resp, err := hc.Do(req)
		if err != nil {
			return "", "", err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		for _, c := range resp.Cookies() {
			if c.Name == "LBSRV" {
				setCookie = c.Value
			}
		}
		return strings.TrimSpace(string(b)), setCookie, nil
	}
	const clients = 10000
	cookies := make([]string, clients)
	backends := make([]string, clients)
	for i := range cookies {
		be, c, err := get("")
		if err != nil || c == "" {
			t.Fatalf("client %d: %q, cookie %q, %v", i, be, c, err)
		}
		cookies[i], backends[i] = c, be
	}
	check := func(phase string) {
		t.Helper()
		hc.CloseIdleConnections()
		mismatches := 0
		for i := range cookies {
			be, _, err := get(cookies[i])
			if err != nil || be != backends[i] {
				mismatches++
			}
		}
		if mismatches != 0 {
			t.Errorf("%s: %d of %d clients reached another backend", phase, mismatches, clients)
		}
	}
	p.lbctlRun(0, "demote")
	lab.Eventually(t, 10*time.Second, func() (bool, string) {
		return p.state(1) == "MASTER" && !p.holdsVIP(0), "lb2 is " + p.state(1)
	})
	check("after demote")
	// lbctl sessions on the new master shows the replicated cookie table
	// and resolves a client's cookie to its backend.
	out := p.lbctlRun(1, "sessions")
	if !strings.Contains(out, "sticky") || !strings.Contains(out, "records_received") || !strings.Contains(out, "streaming") {
		t.Errorf("lbctl sessions:\n%s", out)
	}
	// Both nodes hold the same table (one token per backend), and each has
	// applied all the other sent (lag per peer).
	lab.Eventually(t, 10*time.Second, func() (bool, string) {
		var digests [2]string
		var why []string
		for i := range 2 {
			s, err := sessionsOf(p.lbctl, p.dir[i])
			if err != nil {
				return false, err.Error()
			}
			for _, tb := range s.Tables {
				if tb.Name == "sticky" && tb.Entries > 0 {
					digests[i] = tb.Digest
				}
			}
			if len(s.Peers) != 1 || s.Peers[0].State != "streaming" || s.Peers[0].Pending != 0 {
				digests[i] = ""
			}
			why = append(why, fmt.Sprintf("lb%d: %+v peers %+v", i+1, s.Tables, s.Peers))
		}
		return digests[0] != "" && digests[0] == digests[1], strings.Join(why, "; ")
	})
	wantAddr := map[string]string{"be1": "198.18.0.21:8080", "be2": "198.18.0.22:8080"}[backends[0]]
	if out := p.lbctlRun(1, "sessions", "app", cookies[0]); !strings.Contains(out, "-> "+wantAddr) {
		t.Errorf("lbctl sessions app %s = %q, want %s", cookies[0], out, wantAddr)
	}
	// lb1 is promoted and takes the VIP back (preempt), then crashes.
	p.lbctlRun(0, "promote")
	lab.Eventually(t, 10*time.Second, func() (bool, string) {
		return p.state(0) == "MASTER" && !p.holdsVIP(1), "lb1 is " + p.state(0)
	})
	check("back on lb1")
	p.proc[0].Signal(syscall.SIGKILL)
	p.proc[0].Wait(10 * time.Second)
	p.proc[0] = nil
	lab.Eventually(t, 10*time.Second, func() (bool, string) { return p.state(1) == "MASTER", "lb2 is " + p.state(1) })
	// lb1's kernel still holds the VIP (it crashed); the client follows
	// lb2's gratuitous ARP.
	lab.Eventually(t, 10*time.Second, func() (bool, string) {
		mac, _ := p.client.Neighbor(vip)
		return mac.String() == p.lb[1].MAC.String(), fmt.Sprintf("client neighbour %v", mac)
	})
	check("after SIGKILL of the master")
}
