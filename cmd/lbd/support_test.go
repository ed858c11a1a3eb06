package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"lbd/admin"
	"lbd/lab"
)

// lb1Lab is a lab with lbd's node lb1 (198.18.0.11) and a client host
// (198.18.0.50): what the single-node lab tests start from. Each test adds
// its backends.
type lb1Lab struct {
	l      *lab.Lab
	lb     *lab.Host
	client *lab.Host
	lbd    string // the lbd binary
	lbctl  string // the lbctl binary
	dir    string // lb1's lbd.toml, admin socket and state
}

func newLB1Lab(t *testing.T) *lb1Lab {
	lbdBin, lbctlBin := binaries(t)
	l := lab.New(t)
	x := &lb1Lab{l: l, lbd: lbdBin, lbctl: lbctlBin}
	x.lb = l.AddHostAddr("lb1", 11)
	x.client = l.AddHostAddr("client", 50)
	x.dir = t.TempDir()
	return x
}

// start writes cfg as lb1's lbd.toml and starts lbd on lb1.
func (x *lb1Lab) start(t *testing.T, cfg string) *lab.Proc {
	t.Helper()
	return startLBD(t, x.lb, x.lbd, x.dir, cfg)
}

// status returns lbctl status -json of lb1.
func (x *lb1Lab) status() (admin.Status, error) {
	var st admin.Status
	out, err := lbctl(x.lbctl, x.dir, "status", "-json")
	if err != nil {
		return st, fmt.Errorf("lbctl status: %v: %s", err, out)
	}
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		return st, fmt.Errorf("lbctl status: %v: %s", err, out)
	}
	return st, nil
}

// httpClient is an HTTP client whose connections are made inside the
// client host's namespace: an http.Transport dials from goroutines of
// its own, so it gets the namespace's Dial, never the root namespace's.
func (x *lb1Lab) httpClient(keepAlive bool) *http.Client {
	return &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		DisableKeepAlives: !keepAlive,
		DialContext: func(_ context.Context, network, addr string) (net.Conn, error) {
			return x.client.Dial(network, addr)
		},
	}}
}

// getText GETs url and returns the response and its body without the
// white space around it.
func getText(hc *http.Client, url string) (*http.Response, string, error) {
	resp, err := hc.Get(url)
	if err != nil {
		return nil, "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, strings.TrimSpace(string(b)), nil
}

// startLBD writes cfg as dir/lbd.toml and starts the lbd binary bin with
// it in h (see runLBD).
func startLBD(t *testing.T, h *lab.Host, bin, dir, cfg string) *lab.Proc {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, "lbd.toml"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	return runLBD(t, h, bin, dir)
}

// runLBD starts the lbd binary bin in h with dir/lbd.toml and waits until
// it says it started.
func runLBD(t *testing.T, h *lab.Host, bin, dir string) *lab.Proc {
	t.Helper()
	proc, err := h.Start(bin, "-config", filepath.Join(dir, "lbd.toml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := proc.WaitOutput("lbd started", 30*time.Second); err != nil {
		t.Fatal(err)
	}
	return proc
}

// serveHTTP serves handler on addr inside h until the test ends, or
// until the caller closes the server it returns.
func serveHTTP(t *testing.T, h *lab.Host, addr string, handler http.Handler) *http.Server {
	t.Helper()
	ln, err := h.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: handler}
	var wg sync.WaitGroup
	wg.Go(func() { srv.Serve(ln) })
	t.Cleanup(func() { srv.Close(); wg.Wait() })
	return srv
}

// lb1Node is lb1's [node] table, with its admin socket and state in dir.
func lb1Node(dir string) string {
	return fmt.Sprintf(`
[node]
name = "lb1"
admin_socket = "%[1]s/lbd.sock"
state_dir = "%[1]s/state"
`, dir)
}

// webFrontend is frontend "web": HTTP on lb1's port 80 to pool "app".
const webFrontend = `
[[frontend]]
name = "web"
bind = "198.18.0.11:80"
mode = "http"
default_pool = "app"
`

// httpHealth is a pool's [pool.health] table: GET /health every
// interval, down after 2 failures, up after 2 passes.
func httpHealth(interval, timeout string) string {
	return fmt.Sprintf(`  [pool.health]
  type = "http"
  path = "/health"
  interval = %q
  timeout = %q
  fall = 2
  rise = 2
`, interval, timeout)
}

// backendsTOML is a [[pool.backend]] table for each address.
func backendsTOML(addrs ...string) string {
	var b strings.Builder
	for _, a := range addrs {
		fmt.Fprintf(&b, "  [[pool.backend]]\n  address = %q\n", a)
	}
	return b.String()
}

// udpEcho answers every datagram to h's address on port 5353 with h's
// name and the datagram, until the test ends: a DNS-like backend that says
// which backend a flow reached.
func udpEcho(t *testing.T, h *lab.Host) {
	pc, err := h.ListenPacket("udp", h.IPv4.String()+":5353")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	go func() {
		buf := make([]byte, 512)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			pc.WriteTo(append([]byte(h.Name+" "), buf[:n]...), from)
		}
	}()
}

// pairCluster writes a cluster key and returns a pair configuration edit
// that puts both nodes in one [cluster] (lb1 at .11, lb2 at .12), with
// the key.
func pairCluster(t *testing.T) func(i int, cfg string) string {
	key := clusterKey(t)
	return func(i int, cfg string) string {
		return strings.Replace(cfg, "[[vrrp]]", fmt.Sprintf(`[cluster]
bind = "198.18.0.%d:7946"
peers = ["198.18.0.%d:7946"]
secret_key_file = %q

[[vrrp]]`, 11+i, 12-i, key), 1)
	}
}

// clusterKey writes a cluster key (secret_key_file) and returns its path.
func clusterKey(t *testing.T) string {
	key := filepath.Join(t.TempDir(), "cluster.key")
	if err := os.WriteFile(key, []byte("MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return key
}

// aliveMembers counts the members st holds alive.
func aliveMembers(st admin.Status) int {
	n := 0
	for _, m := range st.Members {
		if m.State == "alive" {
			n++
		}
	}
	return n
}

// waitClustered waits until lb2 sees both nodes alive in the cluster and
// lb1 is master.
func (p *pair) waitClustered(t *testing.T) {
	t.Helper()
	lab.Eventually(t, 20*time.Second, func() (bool, string) {
		st, ok := p.status(1)
		return ok && aliveMembers(st) == 2 && p.state(0) == "MASTER", fmt.Sprintf("lb2 members %+v, lb1 %s", st.Members, p.state(0))
	})
}

// sourceIPPoolTOML is pool "db": two backends on port 9000 of be1 and be2,
// clients kept on their backend by source IP.
const sourceIPPoolTOML = `
[[pool]]
name = "db"
algorithm = "random"
  [pool.sticky]
  source_ip = true
  [[pool.backend]]
  address = "198.18.0.21:9000"
  [[pool.backend]]
  address = "198.18.0.22:9000"
`
