package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"lbd/admin"
	"lbd/lab"
)

// clientAddr is the i-th of the many client addresses a test gives one
// client host (198.19.0.0/16, routed to it by the lbd nodes).
func clientAddr(i int) netip.Addr {
	return netip.AddrFrom4([4]byte{198, 19, byte((i + 1) >> 8), byte(i + 1)})
}

// addClients gives h n client addresses and routes them to it from hosts.
func addClients(t *testing.T, h *lab.Host, n int, routers ...*lab.Host) {
	t.Helper()
	ps := make([]netip.Prefix, n)
	for i := range ps {
		ps[i] = netip.PrefixFrom(clientAddr(i), 32)
	}
	if err := h.AddAddrs(ps...); err != nil {
		t.Fatal(err)
	}
	for _, r := range routers {
		if err := r.AddRoute(netip.MustParsePrefix("198.19.0.0/16"), h.IPv4); err != nil {
			t.Fatal(err)
		}
	}
}

// greetFrom connects from src to addr and returns the first word the
// backend says (its name), or the error.
func greetFrom(h *lab.Host, src netip.Addr, addr string) string {
	c, err := h.DialFrom("tcp", src, addr)
	if err != nil {
		return "error: " + err.Error()
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return "error: " + err.Error()
	}
	return strings.Fields(line)[0]
}

// greetAll runs greetFrom for the client addresses [from, to) on 8
// workers and returns the answers by index.
func greetAll(h *lab.Host, from, to int, addr func(i int) string) map[int]string {
	var mu sync.Mutex
	out := make(map[int]string, to-from)
	next := from
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for {
				mu.Lock()
				i := next
				next++
				mu.Unlock()
				if i >= to {
					return
				}
				got := greetFrom(h, clientAddr(i), addr(i))
				mu.Lock()
				out[i] = got
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return out
}

// sessionsOf returns lbctl sessions -json of the node whose admin socket
// is in dir.
func sessionsOf(lbctl, dir string) (admin.Sessions, error) {
	var s admin.Sessions
	out, err := exec.Command(lbctl, "-socket", filepath.Join(dir, "lbd.sock"), "-timeout", "5s", "sessions", "-json").Output()
	if err != nil {
		return s, fmt.Errorf("lbctl sessions: %w", err)
	}
	return s, json.Unmarshal(out, &s)
}

const trioConfig = `
[node]
name = "%[1]s"
admin_socket = "%[2]s/lbd.sock"
state_dir = "%[2]s/state"

[cluster]
bind = "%[3]s:7946"
peers = [%[4]s]
secret_key_file = "%[5]s"

[[frontend]]
name = "db"
bind = "%[3]s:7000"
mode = "tcp"
default_pool = "db"
` + sourceIPPoolTOML

// TestClusterPartitionConverges: three lbd nodes in a [cluster]; lb3 is
// cut off from lb1 and lb2 (a 1+2 partition) while clients are pinned by
// source IP through both sides, some of the same clients through both, so
// the two sides write different backends for the same keys. After the
// partition heals, all three nodes hold identical tables (equal digests in
// lbctl sessions) and every client reaches the same backend through any
// node.
func TestClusterPartitionConverges(t *testing.T) {
	lbdBin, lbctlBin := binaries(t)
	l := lab.New(t)
	var lbs []*lab.Host
	var dirs []string
	for i := range 3 {
		lbs = append(lbs, l.AddHostAddr(fmt.Sprintf("lb%d", i+1), 11+i))
		dirs = append(dirs, t.TempDir())
	}
	for i := range 2 {
		h := l.AddHostAddr(fmt.Sprintf("be%d", i+1), 21+i)
		greeter(t, h, h.IPv4.String()+":9000")
	}
	client := l.AddHostAddr("client", 50)
	const clients = 800
	addClients(t, client, clients, lbs...)
	key := clusterKey(t)
	for i, h := range lbs {
		var peers []string
		for j, o := range lbs {
			if j != i {
				peers = append(peers, fmt.Sprintf("%q", o.IPv4.String()+":7946"))
			}
		}
		cfg := fmt.Sprintf(trioConfig, h.Name, dirs[i], h.IPv4, strings.Join(peers, ", "), key)
		if err := os.WriteFile(filepath.Join(dirs[i], "lbd.toml"), []byte(cfg), 0o644); err != nil {
			t.Fatal(err)
		}
		proc, err := h.Start(lbdBin, "-config", filepath.Join(dirs[i], "lbd.toml"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			proc.Kill()
			if t.Failed() {
				t.Logf("%s output:\n%s", h.Name, proc.Output())
			}
		})
	}
	// alive returns how many members node i holds alive.
	alive := func(i int) int {
		out, err := exec.Command(lbctlBin, "-socket", filepath.Join(dirs[i], "lbd.sock"), "-timeout", "5s", "status", "-json").Output()
		var st admin.Status
		if err != nil || json.Unmarshal(out, &st) != nil {
			return -1
		}
		return aliveMembers(st)
	}
	waitMembers := func(want ...int) {
		t.Helper()
		lab.Eventually(t, 60*time.Second, func() (bool, string) {
			got := []int{alive(0), alive(1), alive(2)}
			return fmt.Sprint(got) == fmt.Sprint(want), fmt.Sprintf("alive members seen by lb1..lb3: %v, want %v", got, want)
		})
	}
	waitMembers(3, 3, 3)
	via := func(n int) func(int) string { return func(int) string { return lbs[n].IPv4.String() + ":7000" } }
	check := func(phase string, got map[int]string) {
		t.Helper()
		for i, be := range got {
			if be != "be1" && be != "be2" {
				t.Fatalf("%s: client %d: %s", phase, i, be)
			}
		}
	}
	check("before the partition", greetAll(client, 0, 300, via(0)))

	// The partition: lb3 drops everything from and to lb1 and lb2.
	if err := lbs[2].Cut(lbs[0].IPv4, lbs[1].IPv4); err != nil {
		t.Fatal(err)
	}
	waitMembers(2, 2, 1)
	majority := greetAll(client, 300, 600, via(0))
	check("majority side", majority)
	check("majority side, lb2", greetAll(client, 750, clients, via(1)))
	minority := greetAll(client, 450, 750, via(2))
	check("minority side", minority)
	conflicts := 0
	for i := 450; i < 600; i++ {
		if majority[i] != minority[i] {
			conflicts++
		}
	}
	t.Logf("%d of 150 clients pinned to different backends on the two sides", conflicts)
	if conflicts == 0 {
		t.Fatalf("no conflicting writes: the two sides shared their tables through the partition")
	}

	start := time.Now()
	if err := lbs[2].Cut(); err != nil {
		t.Fatal(err)
	}
	waitMembers(3, 3, 3)
	var digests [3]string
	lab.Eventually(t, 60*time.Second, func() (bool, string) {
		var why []string
		for i, d := range dirs {
			s, err := sessionsOf(lbctlBin, d)
			if err != nil {
				return false, err.Error()
			}
			digests[i] = ""
			for _, tb := range s.Tables {
				if tb.Name == "source-ip" {
					digests[i] = tb.Digest
					why = append(why, fmt.Sprintf("lb%d: %d entries, digest %s", i+1, tb.Entries, tb.Digest))
					if tb.Entries != clients {
						digests[i] = fmt.Sprintf("%d entries", tb.Entries)
					}
				}
			}
		}
		return digests[0] != "" && digests[0] == digests[1] && digests[1] == digests[2], strings.Join(why, "; ")
	})
	t.Logf("identical tables on all three nodes %v after the partition healed (digest %s)", time.Since(start).Round(time.Millisecond), digests[0])
	// Every client now reaches one backend, whichever node it goes through.
	answers := [3]map[int]string{}
	for n := range 3 {
		answers[n] = greetAll(client, 0, clients, via(n))
	}
	mismatches := 0
	for i := range clients {
		if answers[0][i] != answers[1][i] || answers[1][i] != answers[2][i] {
			mismatches++
			if mismatches <= 5 {
				t.Errorf("client %d: %s via lb1, %s via lb2, %s via lb3", i, answers[0][i], answers[1][i], answers[2][i])
			}
		}
	}
	if mismatches != 0 {
		t.Errorf("%d of %d clients reach different backends through different nodes", mismatches, clients)
	}
}
