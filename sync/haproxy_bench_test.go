package lbsync

// HAProxy's peers protocol beside lbd's replication, in the same run: two
// HAProxy processes whose stick-table is replicated over a peers section,
// keys written and read through the runtime API (the stats socket in
// prompt mode), as an operator's tooling would. Run both sides with
//
//	go test -run '^$' -bench 'Propagation|ReplicatedWrites|Resync1M|MemoryPerEntry|SimultaneousStart' -benchtime 1x ./sync
//
// (make bench-sync). Reading a key on B through the API adds one API round
// trip (about 30 µs) to HAProxy's propagation figures.

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// haproxyConfig is one peer of a pair: stick-table st of string keys with
// an integer (gpt0: the backend) replicated over peers lbpeers.
const haproxyConfig = `global
  stats socket %[1]s mode 600 level admin
  stats timeout 10m
  maxconn 1000
defaults
  mode tcp
  timeout connect 5s
  timeout client 30s
  timeout server 30s
peers lbpeers
  peer a 127.0.0.1:%[2]d
  peer b 127.0.0.1:%[3]d
backend st
  stick-table type string len 64 size 2m expire 1h peers lbpeers store gpt0
`

// haproxyPeer is one HAProxy process of a pair.
type haproxyPeer struct {
	name string
	cmd  *exec.Cmd
	cli  *haproxyCLI
	out  bytes.Buffer
}

// haproxyPair holds the configuration of peers a and b; start runs them.
type haproxyPair struct {
	bin, dir string
	ports    [2]int
}

func newHAProxyPair(b *testing.B) *haproxyPair {
	bin, err := exec.LookPath("haproxy")
	if err != nil {
		if os.Getenv("CI") == "true" {
			b.Fatalf("haproxy is not installed: %v", err)
		}
		b.Skipf("haproxy is not installed")
	}
	p := &haproxyPair{bin: bin, dir: b.TempDir()}
	for i := range p.ports {
		p.ports[i] = freePort(b)
	}
	return p
}

// freePort returns a TCP port on loopback that was free a moment ago.
func freePort(b *testing.B) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// start runs peer name ("a" or "b") and connects to its runtime API.
func (p *haproxyPair) start(b *testing.B, name string) *haproxyPeer {
	sock := filepath.Join(p.dir, name+".sock")
	cfg := filepath.Join(p.dir, name+".cfg")
	os.Remove(sock)
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf(haproxyConfig, sock, p.ports[0], p.ports[1])), 0o644); err != nil {
		b.Fatal(err)
	}
	h := &haproxyPeer{name: name, cmd: exec.Command(p.bin, "-db", "-f", cfg, "-L", name)}
	h.cmd.Stdout, h.cmd.Stderr = &h.out, &h.out
	if err := h.cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(h.stop)
	deadline := time.Now().Add(10 * time.Second)
	for {
		cli, err := dialHAProxyCLI(sock)
		if err == nil {
			h.cli = cli
			return h
		}
		if time.Now().After(deadline) {
			b.Fatalf("haproxy %s: %v\n%s", name, err, h.out.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func (h *haproxyPeer) stop() {
	if h.cmd.Process != nil && h.cmd.ProcessState == nil {
		h.cmd.Process.Kill()
		h.cmd.Wait()
	}
	if h.cli != nil {
		h.cli.c.Close()
	}
}

// used returns the entries of table st, from `show table`.
func (h *haproxyPeer) used() (int, error) {
	out, err := h.cli.do("show table")
	if err != nil {
		return 0, err
	}
	_, rest, ok := strings.Cut(out, "used:")
	if !ok {
		return 0, fmt.Errorf("haproxy %s: show table: %q", h.name, out)
	}
	num, _, _ := strings.Cut(rest, "\n")
	return strconv.Atoi(strings.TrimSpace(num))
}

// rss returns the process's resident memory in bytes.
func (h *haproxyPeer) rss() (int64, error) { return rssOf(h.cmd.Process.Pid) }

// haproxyCLI is a connection to HAProxy's runtime API in prompt mode:
// every answer ends with a "\n> " prompt, so commands can be pipelined.
type haproxyCLI struct {
	c  net.Conn
	br *bufio.Reader
}

func dialHAProxyCLI(sock string) (*haproxyCLI, error) {
	c, err := net.Dial("unix", sock)
	if err != nil {
		return nil, err
	}
	cli := &haproxyCLI{c: c, br: bufio.NewReaderSize(c, 1<<16)}
	if _, err := c.Write([]byte("prompt\n")); err != nil {
		c.Close()
		return nil, err
	}
	if _, err := cli.answer(); err != nil {
		c.Close()
		return nil, err
	}
	return cli, nil
}

// answer reads one answer, up to and without its prompt.
func (h *haproxyCLI) answer() (string, error) {
	h.c.SetReadDeadline(time.Now().Add(30 * time.Second))
	var b []byte
	for {
		chunk, err := h.br.ReadSlice('>')
		b = append(b, chunk...)
		switch {
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case err != nil:
			return "", fmt.Errorf("haproxy cli: %w (read %q)", err, b)
		}
		if bytes.HasSuffix(b, []byte("\n>")) || len(b) == 1 {
			if sp, err := h.br.ReadByte(); err != nil || sp != ' ' {
				return "", fmt.Errorf("haproxy cli: prompt not followed by a space (read %q)", b)
			}
			return string(b[:len(b)-1]), nil
		}
	}
}

// do runs one command.
func (h *haproxyCLI) do(cmd string) (string, error) {
	if _, err := h.c.Write([]byte(cmd + "\n")); err != nil {
		return "", err
	}
	return h.answer()
}

// pipeline sends cmds in batches of 1000 and reads their answers.
func (h *haproxyCLI) pipeline(cmds []string) error {
	for len(cmds) > 0 {
		n := min(len(cmds), 1000)
		if _, err := h.c.Write([]byte(strings.Join(cmds[:n], "\n") + "\n")); err != nil {
			return err
		}
		for range n {
			if out, err := h.answer(); err != nil {
				return err
			} else if strings.TrimSpace(out) != "" {
				return fmt.Errorf("haproxy cli: %q", out)
			}
		}
		cmds = cmds[n:]
	}
	return nil
}

// setKey is the runtime API command that writes key i.
func setKey(i int) string { return fmt.Sprintf("set table st key %s data.gpt0 %d", cookieKey(i), i%8) }

// waitUsed waits until peer h holds n entries and returns how long it took.
func waitUsed(b *testing.B, h *haproxyPeer, n int, start time.Time) time.Duration {
	deadline := start.Add(120 * time.Second)
	for {
		got, err := h.used()
		if err != nil {
			b.Fatal(err)
		}
		if got >= n {
			return time.Since(start)
		}
		if time.Now().After(deadline) {
			b.Fatalf("haproxy %s holds %d of %d entries", h.name, got, n)
		}
		time.Sleep(time.Millisecond)
	}
}

// BenchmarkHAProxyPropagation: a key written on A through the runtime API,
// read on B until it is there; p50 and p99 in µs.
func BenchmarkHAProxyPropagation(b *testing.B) {
	p := newHAProxyPair(b)
	a, bp := p.start(b, "a"), p.start(b, "b")
	// Wait until the peers are connected: a first key goes through.
	if _, err := a.cli.do(setKey(-1)); err != nil {
		b.Fatal(err)
	}
	waitUsed(b, bp, 1, time.Now())
	var lat []time.Duration
	for i := 0; b.Loop(); i++ {
		start := time.Now()
		if _, err := a.cli.do(setKey(i)); err != nil {
			b.Fatal(err)
		}
		want := "key=" + cookieKey(i) + " "
		for {
			out, err := bp.cli.do("show table st key " + cookieKey(i))
			if err != nil {
				b.Fatal(err)
			}
			if strings.Contains(out, want) {
				break
			}
			if time.Since(start) > 10*time.Second {
				b.Fatalf("key %d never reached b", i)
			}
		}
		lat = append(lat, time.Since(start))
	}
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Nanoseconds())/1e3, "p50-µs")
	b.ReportMetric(float64(lat[len(lat)*99/100].Nanoseconds())/1e3, "p99-µs")
}

// BenchmarkHAProxyReplicatedWrites: b.N keys pipelined into A's runtime
// API; the time until B holds them all.
func BenchmarkHAProxyReplicatedWrites(b *testing.B) {
	p := newHAProxyPair(b)
	a, bp := p.start(b, "a"), p.start(b, "b")
	if _, err := a.cli.do(setKey(-1)); err != nil {
		b.Fatal(err)
	}
	waitUsed(b, bp, 1, time.Now())
	cmds := make([]string, b.N)
	for i := range cmds {
		cmds[i] = setKey(i)
	}
	b.ResetTimer()
	start := time.Now()
	if err := a.cli.pipeline(cmds); err != nil {
		b.Fatal(err)
	}
	took := waitUsed(b, bp, b.N+1, start)
	b.StopTimer()
	b.ReportMetric(float64(b.N)/took.Seconds(), "writes/s")
}

// BenchmarkHAProxyResync1M: A holds 1 M keys; B starts and is filled by
// A's full resync (HAProxy's "teaching" of a fresh peer). Also reports A's
// resident memory per entry.
func BenchmarkHAProxyResync1M(b *testing.B) {
	const n = 1_000_000
	p := newHAProxyPair(b)
	a := p.start(b, "a")
	rss0, err := a.rss()
	if err != nil {
		b.Fatal(err)
	}
	cmds := make([]string, n)
	for i := range cmds {
		cmds[i] = setKey(i)
	}
	if err := a.cli.pipeline(cmds); err != nil {
		b.Fatal(err)
	}
	rss1, err := a.rss()
	if err != nil {
		b.Fatal(err)
	}
	var took time.Duration
	for b.Loop() {
		start := time.Now()
		bp := p.start(b, "b")
		took = waitUsed(b, bp, n, start)
		b.StopTimer()
		bp.stop()
		b.StartTimer()
	}
	b.ReportMetric(took.Seconds(), "s/resync")
	b.ReportMetric(float64(rss1-rss0)/n, "rss-B/entry")
}

// BenchmarkHAProxySimultaneousStart starts both peers at once and writes a
// key on A every millisecond for 3 s from the moment both answer, each
// read back on B: the slowest write, and how many took over 100 ms.
func BenchmarkHAProxySimultaneousStart(b *testing.B) {
	for b.Loop() {
		p := newHAProxyPair(b)
		var peers [2]*haproxyPeer
		var wg sync.WaitGroup
		for i, name := range []string{"a", "b"} {
			wg.Go(func() { peers[i] = p.start(b, name) })
		}
		wg.Wait()
		a, bp := peers[0], peers[1]
		reportStalls(b, func(i int) error {
			_, err := a.cli.do(setKey(i))
			return err
		}, func(i int) (bool, error) {
			out, err := bp.cli.do("show table st key " + cookieKey(i))
			return strings.Contains(out, "key="+cookieKey(i)+" "), err
		})
		a.stop()
		bp.stop()
	}
}

// BenchmarkSimultaneousStart is BenchmarkHAProxySimultaneousStart for lbd:
// two nodes started at once, each configured with the other as its peer.
func BenchmarkSimultaneousStart(b *testing.B) {
	for b.Loop() {
		ports := [2]int{freePort(b), freePort(b)}
		var nodes [2]*Cluster
		var wg sync.WaitGroup
		for i := range nodes {
			wg.Go(func() {
				nodes[i] = startNode(b, fmt.Sprintf("lb%d", i+1), withKey(key1),
					func(c *Config) { c.Bind = fmt.Sprintf("127.0.0.1:%d", ports[i]) },
					withPeers(fmt.Sprintf("127.0.0.1:%d", ports[1-i])))
			})
		}
		wg.Wait()
		ta, tb := nodes[0].Table("sticky", 1<<20), nodes[1].Table("sticky", 1<<20)
		reportStalls(b, func(i int) error {
			ta.Store(cookieKey(i), backend(i), time.Hour)
			return nil
		}, func(i int) (bool, error) {
			_, ok := tb.Lookup(cookieKey(i))
			return ok, nil
		})
		nodes[0].Close()
		nodes[1].Close()
	}
}

// reportStalls writes key i every millisecond for 3 s and polls each until
// it is visible, and reports the slowest and the count over 100 ms.
func reportStalls(b *testing.B, write func(i int) error, visible func(i int) (bool, error)) {
	var worst time.Duration
	stalls := 0
	begin := time.Now()
	for i := 0; time.Since(begin) < 3*time.Second; i++ {
		start := time.Now()
		if err := write(i); err != nil {
			b.Fatal(err)
		}
		for {
			ok, err := visible(i)
			if err != nil {
				b.Fatal(err)
			}
			if ok {
				break
			}
			if time.Since(start) > 10*time.Second {
				b.Fatalf("write %d not visible after 10 s", i)
			}
			time.Sleep(50 * time.Microsecond)
		}
		d := time.Since(start)
		worst = max(worst, d)
		if d > 100*time.Millisecond {
			stalls++
		}
		time.Sleep(time.Until(start.Add(time.Millisecond)))
	}
	b.ReportMetric(float64(worst.Microseconds())/1e3, "worst-ms")
	b.ReportMetric(float64(stalls), "writes>100ms")
}

// rssOf reads VmRSS from /proc/PID/status.
func rssOf(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10, err
		}
	}
	return 0, errors.New("no VmRSS")
}
