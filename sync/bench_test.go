package lbsync

import (
	"bufio"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"testing"
	"time"
)

// cookieKey is a realistic sticky-cookie key: pool and a 22-byte token.
func cookieKey(i int) string {
	var tok [16]byte
	binary.LittleEndian.PutUint64(tok[:], uint64(i)*0x9e3779b97f4a7c15)
	binary.LittleEndian.PutUint64(tok[8:], uint64(i))
	return "http-cookie/app/" + base64.RawURLEncoding.EncodeToString(tok[:])
}

// flowKey is a UDP flow or source-IP key.
func flowKey(i int) string {
	return fmt.Sprintf("198.18.%d.%d:%d", i>>16&0xff, i>>8&0xff, 1024+i&0xff)
}

// BenchmarkPropagation measures write on A → visible on B, one write at a
// time, with encryption: p50 and p99 in µs.
func BenchmarkPropagation(b *testing.B) {
	// B signals each message it applies, so that the benchmark blocks
	// like a proxy would instead of spinning (a spinning goroutine keeps
	// the scheduler from polling the network and adds up to 10 ms).
	applied := make(chan struct{}, 1)
	signal := func(c *Config) {
		c.applied = func() {
			select {
			case applied <- struct{}{}:
			default:
			}
		}
	}
	a := startNode(b, "lb1", withKey(key1))
	bn := startNode(b, "lb2", withKey(key1), withPeers(peerOf(a)), signal)
	waitConnected(b, a, bn)
	ta, tb := a.Table("sticky", 1<<22), bn.Table("sticky", 1<<22)
	var lat []time.Duration
	for i := 0; b.Loop(); i++ {
		k := cookieKey(i)
		start := time.Now()
		ta.Store(k, backend(i), time.Hour)
		for {
			if _, ok := tb.Lookup(k); ok {
				break
			}
			<-applied
		}
		lat = append(lat, time.Since(start))
	}
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Nanoseconds())/1e3, "p50-µs")
	b.ReportMetric(float64(lat[len(lat)*99/100].Nanoseconds())/1e3, "p99-µs")
}

// BenchmarkReplicatedWrites measures writes on A until all are on B.
func BenchmarkReplicatedWrites(b *testing.B) {
	nodes := startCluster(b, 2, withKey(key1))
	ta, tb := nodes[0].Table("sticky", 1<<23), nodes[1].Table("sticky", 1<<23)
	keys := make([]string, b.N)
	for i := range keys {
		keys[i] = cookieKey(i)
	}
	b.ResetTimer()
	for i, k := range keys {
		ta.Store(k, backend(i), time.Hour)
	}
	waitFor(b, "the last write on B", func() bool { _, ok := tb.Lookup(keys[len(keys)-1]); return ok })
	b.StopTimer()
	if tb.Len() != b.N {
		b.Fatalf("B holds %d of %d writes", tb.Len(), b.N)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "writes/s")
}

// BenchmarkResync1M starts a node next to one holding 1 M entries and
// measures until it has received them all (start and join included). The
// full node runs in this process, or in a child process as in production,
// where each node's garbage collector scans only its own heap.
func BenchmarkResync1M(b *testing.B) {
	const n = 1_000_000
	b.Run("in-process", func(b *testing.B) {
		a := startNode(b, "lb1", withKey(key1))
		ta := a.Table("sticky", 1<<21)
		for i := range n {
			ta.Store(cookieKey(i), backend(i), time.Hour)
		}
		benchResync(b, peerOf(a), n)
	})
	b.Run("separate-process", func(b *testing.B) {
		addr, perEntry := startPeerProcess(b, n)
		benchResync(b, addr, n)
		b.ReportMetric(perEntry, "rss-B/entry")
	})
}

func benchResync(b *testing.B, peer string, n int) {
	runtime.GC()
	for i := 0; b.Loop(); i++ {
		late := startNode(b, fmt.Sprintf("late%d", i), withKey(key1), withPeers(peer))
		waitFor(b, "the full state", func() bool { return late.Stats().FullSyncsReceived >= 1 })
		b.StopTimer()
		if got := late.Table("sticky", 0).Len(); got != n {
			b.Fatalf("late node holds %d of %d entries", got, n)
		}
		late.Close()
		runtime.GC()
		b.StartTimer()
	}
	b.ReportMetric(float64(n)/(b.Elapsed().Seconds()/float64(b.N)), "entries/s")
}

// startPeerProcess runs this test binary as a node holding n entries (see
// TestMain) and returns its address and the resident memory the entries
// took, per entry; the node stops when the benchmark ends.
func startPeerProcess(b *testing.B, n int) (string, float64) {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%d", peerEnv, n))
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		stdin.Close()
		cmd.Wait()
	})
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		b.Fatalf("peer process: %v", err)
	}
	var addr string
	var rss0, rss1 int64
	if _, err := fmt.Sscan(line, &addr, &rss0, &rss1); err != nil {
		b.Fatalf("peer process said %q: %v", line, err)
	}
	return addr, float64(rss1-rss0) / float64(n)
}

// peerEnv makes the test binary a benchmark's peer node instead of running
// tests.
const peerEnv = "LBSYNC_BENCH_PEER"

func TestMain(m *testing.M) {
	if v := os.Getenv(peerEnv); v != "" {
		os.Exit(runPeer(v))
	}
	os.Exit(m.Run())
}

// runPeer starts a node holding n entries, prints its address and runs
// until its standard input closes.
func runPeer(v string) int {
	n, err := strconv.Atoi(v)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	c, err := New(Config{NodeName: "peer", Bind: "127.0.0.1:0", SecretKey: key1, tune: fastMemberlist}, slog.New(slog.DiscardHandler))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer c.Close()
	debug.FreeOSMemory()
	rss0, err := rssOf(os.Getpid())
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	t := c.Table("sticky", 1<<21)
	for i := range n {
		t.Store(cookieKey(i), backend(i), time.Hour)
	}
	// The memory the entries hold once the garbage of filling them is
	// collected and given back, as the runtime's scavenger does over time.
	debug.FreeOSMemory()
	rss1, err := rssOf(os.Getpid())
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Println(c.Addr(), rss0, rss1)
	io.Copy(io.Discard, os.Stdin)
	return 0
}

// BenchmarkMemoryPerEntry measures the heap a table holds per entry, with
// 1 M entries of 8 backends.
func BenchmarkMemoryPerEntry(b *testing.B) {
	for _, kind := range []struct {
		name string
		key  func(int) string
	}{{"cookie", cookieKey}, {"flow", flowKey}} {
		b.Run(kind.name, func(b *testing.B) {
			const n = 1_000_000
			var perEntry float64
			for b.Loop() {
				c, _ := localCluster(b, "lb1")
				var before, after runtime.MemStats
				runtime.GC()
				runtime.ReadMemStats(&before)
				t := c.Table("sticky", 1<<21)
				for i := range n {
					t.Store(kind.key(i), backend(i), time.Hour)
				}
				runtime.GC()
				runtime.ReadMemStats(&after)
				if t.Len() != n {
					b.Fatalf("Len %d", t.Len())
				}
				perEntry = float64(after.HeapAlloc-before.HeapAlloc) / n
				runtime.KeepAlive(t)
			}
			b.ReportMetric(perEntry, "B/entry")
		})
	}
}

// hotTable returns a table of 64 Ki entries, without network, and its keys
// and values.
func hotTable(b *testing.B) (*Table, []string, []string) {
	c, _ := localCluster(b, "lb1")
	t := c.Table("sticky", 1<<20)
	const n = 1 << 16
	keys, values := make([]string, n), make([]string, 8)
	for i := range values {
		values[i] = backend(i)
	}
	for i := range keys {
		keys[i] = cookieKey(i)
		t.Store(keys[i], values[i&7], time.Hour)
	}
	return t, keys, values
}

// BenchmarkLookup measures the proxy's hot path: parallel Lookups.
func BenchmarkLookup(b *testing.B) {
	t, keys, _ := hotTable(b)
	b.RunParallel(func(pb *testing.PB) {
		for i := 0; pb.Next(); i += 7919 {
			t.Lookup(keys[i&(len(keys)-1)])
		}
	})
}

// BenchmarkStore measures parallel Stores that change the value (the
// replication queue is off: no member is connected).
func BenchmarkStore(b *testing.B) {
	t, keys, values := hotTable(b)
	b.RunParallel(func(pb *testing.PB) {
		for i := 0; pb.Next(); i += 7919 {
			t.Store(keys[i&(len(keys)-1)], values[i&7], time.Hour)
		}
	})
}
