// Package drill runs failover drills in a network-namespace lab: two load
// balancer nodes (lbd, or Debian's keepalived as the anchor) holding the
// VIP 198.18.0.100, backends, and a client that probes the VIP with a fresh
// TCP connection every 10 ms (see lab/probe). It is what `make demo` and
// `make drill` run.
package drill

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"lbd/admin"
	"lbd/lab"
	"lbd/lab/probe"
)

// VIP is the address the drills fail over.
var VIP = netip.MustParseAddr("198.18.0.100")

// Options are the programs a drill runs.
type Options struct {
	LBD, LBCTL string    // lbd and lbctl binaries
	Probe      []string  // command that runs the probe: PROG probe ARGS...
	Out        io.Writer // where the report goes
}

// node is one load balancer node of the lab.
type node struct {
	name string
	host *lab.Host
	dir  string
	proc *lab.Proc
	conf string
	kind string // "lbd" or "keepalived"
}

// cluster is the lab of one drill or demo.
type cluster struct {
	opts    Options
	lab     *lab.Lab
	nodes   [2]*node
	client  *lab.Host
	servers []*http.Server
	closers []io.Closer
	wg      sync.WaitGroup
	probe   *lab.Proc
	started time.Time
}

func newCluster(opts Options) (*cluster, error) {
	l, err := lab.Open()
	if err != nil {
		return nil, err
	}
	c := &cluster{opts: opts, lab: l}
	for i, name := range []string{"lb1", "lb2"} {
		h, err := l.NewHost(name, 11+i)
		if err != nil {
			c.close()
			return nil, err
		}
		c.nodes[i] = &node{name: name, host: h}
	}
	if c.client, err = l.NewHost("client", 50); err != nil {
		c.close()
		return nil, err
	}
	return c, nil
}

func (c *cluster) close() {
	for _, s := range c.servers {
		s.Close()
	}
	for _, cl := range c.closers {
		cl.Close()
	}
	c.wg.Wait()
	c.lab.Close()
}

// serve runs an HTTP responder on a listener; its body names who answers.
func (c *cluster) serve(ln net.Listener, body func(r *http.Request) string) {
	s := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, body(r)+"\n")
	}), ReadHeaderTimeout: 5 * time.Second}
	c.servers = append(c.servers, s)
	c.wg.Go(func() { s.Serve(ln) })
}

// freebindListen listens on addr inside h with IP_FREEBIND, as a service
// bound to a VIP the node may not hold yet.
func freebindListen(h *lab.Host, addr string) (net.Listener, error) {
	var ln net.Listener
	err := h.Do(func() error {
		lc := net.ListenConfig{Control: func(_, _ string, rc syscall.RawConn) error {
			var serr error
			rc.Control(func(fd uintptr) { serr = unix.SetsockoptInt(int(fd), unix.SOL_IP, unix.IP_FREEBIND, 1) })
			return serr
		}}
		var err error
		ln, err = lc.Listen(context.Background(), "tcp", addr)
		return err
	})
	return ln, err
}

const lbdConfig = `
[node]
name = "%[1]s"
admin_socket = "%[2]s/lbd.sock"
state_dir = "%[2]s/state"

[[vrrp]]
name = "web"
interface = "eth0"
vrid = 51
priority = %[3]d
advert_interval = "%[4]s"
preempt = %[5]t
vips = ["198.18.0.100/24"]

[[frontend]]
name = "web"
bind = "198.18.0.100:80"
mode = "tcp"
default_pool = "app"

[[pool]]
name = "app"
connect_timeout = "1s"
%[6]s`

// LBDConfig is the lbd.toml of a drill node: node name with its admin
// socket and state in dir, VRRP instance "web" (VRID 51 on eth0, the VIP
// 198.18.0.100/24) at priority prio with adverts every advert, and a TCP
// frontend on the VIP's port 80 to a pool of backends (round robin, the
// default algorithm).
func LBDConfig(name, dir string, prio int, advert time.Duration, preempt bool, backends ...string) string {
	var b strings.Builder
	for _, a := range backends {
		fmt.Fprintf(&b, "  [[pool.backend]]\n  address = %q\n", a)
	}
	return fmt.Sprintf(lbdConfig, name, dir, prio, advert, preempt, b.String())
}

// writeLBD writes node i's lbd configuration.
func (c *cluster) writeLBD(i, prio int, advert time.Duration, preempt bool, backends []string) error {
	return c.writeConf(i, "lbd", "lbd.toml", func(dir string) string {
		return LBDConfig(c.nodes[i].name, dir, prio, advert, preempt, backends...)
	})
}

// writeConf makes node i a node of kind ("lbd" or "keepalived") with a
// new directory, and writes its configuration file there: what conf
// returns for that directory.
func (c *cluster) writeConf(i int, kind, file string, conf func(dir string) string) error {
	n := c.nodes[i]
	dir, err := os.MkdirTemp("", kind+"-drill-"+n.name+"-")
	if err != nil {
		return err
	}
	n.dir, n.kind = dir, kind
	n.conf = filepath.Join(dir, file)
	return os.WriteFile(n.conf, []byte(conf(dir)), 0o644)
}

const keepalivedConfig = `
global_defs {
  router_id %[1]s
  vrrp_version %[2]d
}
vrrp_instance web {
  state BACKUP
  interface eth0
  virtual_router_id 51
  priority %[3]d
  advert_int %[4]s
  virtual_ipaddress {
    198.18.0.100/24 dev eth0
  }
}
`

// writeKeepalived writes node i's keepalived configuration.
func (c *cluster) writeKeepalived(i, prio, version int, advert time.Duration) error {
	return c.writeConf(i, "keepalived", "keepalived.conf", func(string) string {
		return fmt.Sprintf(keepalivedConfig, c.nodes[i].name, version, prio, fmt.Sprint(advert.Seconds()))
	})
}

// start starts node i's daemon.
func (c *cluster) start(i int) error {
	n := c.nodes[i]
	var err error
	switch n.kind {
	case "lbd":
		n.proc, err = n.host.Start(c.opts.LBD, "-config", n.conf)
		if err == nil {
			err = n.proc.WaitOutput("lbd started", 30*time.Second)
		}
	case "keepalived":
		n.proc, err = n.host.Start("keepalived", "-n", "-l", "-P", "-G", "-f", n.conf,
			"-p", filepath.Join(n.dir, "k.pid"), "-r", filepath.Join(n.dir, "v.pid"))
	}
	return err
}

// state is node i's VRRP state as it reports it.
func (c *cluster) state(i int) string {
	n := c.nodes[i]
	if n.proc == nil {
		return "DOWN"
	}
	switch n.kind {
	case "lbd":
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		resp, err := admin.Call(ctx, filepath.Join(n.dir, "lbd.sock"), admin.CmdStatus)
		var st admin.Status
		if err != nil || !resp.OK || resp.Decode(&st) != nil || len(st.Instances) == 0 {
			return "DOWN"
		}
		return st.Instances[0].State
	default:
		out := n.proc.Output()
		i := strings.LastIndex(out, "Entering ")
		if i < 0 {
			return "INIT"
		}
		return strings.Fields(out[i+len("Entering "):])[0]
	}
}

func (c *cluster) lbctl(i int, args ...string) error {
	out, err := exec.Command(c.opts.LBCTL, append([]string{"-socket", filepath.Join(c.nodes[i].dir, "lbd.sock")}, args...)...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("lbctl %s: %w: %s", strings.Join(args, " "), err, out)
	}
	return nil
}

// startProbe starts the client's probe process.
func (c *cluster) startProbe() error {
	args := append(c.opts.Probe[1:], "-target", "198.18.0.100:80", "-every", "10ms", "-timeout", "200ms", "-http")
	p, err := c.client.Start(c.opts.Probe[0], args...)
	if err != nil {
		return err
	}
	c.probe = p
	c.started = time.Now()
	return nil
}

// results parses what the probe has logged so far.
func (c *cluster) results() []probe.Result {
	var rs []probe.Result
	sc := bufio.NewScanner(strings.NewReader(c.probe.Output()))
	for sc.Scan() {
		r, err := probe.Read(strings.NewReader(sc.Text()))
		if err == nil && len(r) == 1 {
			rs = append(rs, r[0])
		}
	}
	return rs
}

// waitServing waits until the probes sent after since are answered by who.
func (c *cluster) waitServing(who string, since time.Time, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		rs := c.results()
		for i := len(rs) - 1; i >= 0 && rs[i].Sent.After(since); i-- {
			if rs[i].Who == who {
				return nil
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("drill: no probe answered by %s within %v", who, timeout)
}

var errNoWindow = errors.New("drill: no failover seen by the client")
