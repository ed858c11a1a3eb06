package bench

import (
	"bufio"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"text/tabwriter"
	"time"
)

// versions runs every program the benchmark uses with its version flag.
func versions(o *Options) map[string]string {
	first := func(name string, args ...string) string {
		out, err := exec.Command(name, args...).CombinedOutput()
		line, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
		if err != nil && line == "" {
			return "unavailable: " + err.Error()
		}
		return strings.TrimSpace(line)
	}
	v := map[string]string{
		"lbd":     first(filepath.Join(o.Bin, "lbd"), "-version"),
		"haproxy": first(o.HAProxy, "-v"),
		"nginx":   first(o.Nginx, "-v"),
		"wrk":     first(o.Wrk, "-v"),
		"go":      first("go", "version") + " (lbdbench built with " + runtime.Version() + ")",
		"kernel":  readFirst("/proc/sys/kernel/osrelease"),
		"cpu":     cpuModel(),
	}
	return v
}

func readFirst(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "unavailable: " + err.Error()
	}
	line, _, _ := strings.Cut(strings.TrimSpace(string(b)), "\n")
	return line
}

func cpuModel() string {
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return "unavailable: " + err.Error()
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
			return fmt.Sprintf("%s × %d", strings.TrimSpace(v), runtime.NumCPU())
		}
	}
	return "unknown"
}

func (r *runner) header() {
	w := r.o.Out
	fmt.Fprintf(w, "# lbdbench %s\n", r.res.Started.Format(time.RFC3339))
	fmt.Fprintf(w, "# command: %s\n", quoteArgs(r.res.Command))
	for _, k := range []string{"lbd", "haproxy", "nginx", "wrk", "go", "kernel", "cpu"} {
		fmt.Fprintf(w, "# %-8s %s\n", k+":", r.res.Versions[k])
	}
	fmt.Fprintf(w, "# proxy alone on cpu%d; load generators and backends on cpu%d; median of %d interleaved runs;\n",
		r.o.ProxyCPU, r.o.LoadCPU, r.o.Runs)
	fmt.Fprintf(w, "# ×ROW columns are the median of the per-round ratios to ROW; CPU is utime+stime of the proxy (/proc/PID/stat);\n")
	fmt.Fprintf(w, "# higher is better for Gbit/s, conn/s and req/s, lower for CPU, latency and memory.\n")
}

func quoteArgs(args []string) string {
	q := make([]string, len(args))
	for i, a := range args {
		if a == "" || strings.ContainsAny(a, " \t\"'\\$;&|<>*?") {
			a = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		}
		q[i] = a
	}
	return strings.Join(q, " ")
}

// col is one measured column of a table, with ratio columns beside it.
type col struct {
	head   string
	get    func(Sample) float64 // NaN: not applicable
	format string               // printf verb for the value
	ratios []string             // rows the value is divided by, round by round
	sum    bool                 // total over rounds instead of the median
}

// table prints one table: a row per name in rows that has samples.
func (r *runner) table(title string, samples []Sample, rows []string, cols []col) {
	byRow := map[string]map[int]Sample{}
	for _, s := range samples {
		if byRow[s.Proxy] == nil {
			byRow[s.Proxy] = map[int]Sample{}
		}
		byRow[s.Proxy][s.Round] = s
	}
	fmt.Fprintf(r.o.Out, "\n%s\n", title)
	tw := tabwriter.NewWriter(r.o.Out, 0, 0, 2, ' ', tabwriter.AlignRight)
	// Cells are right-aligned; padding the names keeps them left-aligned.
	head := []string{fmt.Sprintf("%-14s", "proxy")}
	for _, c := range cols {
		head = append(head, c.head)
		for _, base := range c.ratios {
			head = append(head, "×"+base)
		}
	}
	fmt.Fprintln(tw, strings.Join(head, "\t")+"\t")
	for _, name := range rows {
		rounds := byRow[name]
		if len(rounds) == 0 {
			continue
		}
		line := []string{fmt.Sprintf("%-14s", name)}
		for _, c := range cols {
			var vals []float64
			total := 0.0
			for _, s := range rounds {
				vals = append(vals, c.get(s))
				total += c.get(s)
			}
			v := Median(vals)
			if c.sum {
				v = total
			}
			line = append(line, cell(c.format, v))
			for _, base := range c.ratios {
				var ratios []float64
				for round, s := range rounds {
					if b, ok := byRow[base][round]; ok {
						ratios = append(ratios, c.get(s)/c.get(b))
					}
				}
				line = append(line, cell("%.2f", Median(ratios)))
			}
		}
		fmt.Fprintln(tw, strings.Join(line, "\t")+"\t")
	}
	tw.Flush()
}

func cell(format string, v float64) string {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return "-"
	}
	return fmt.Sprintf(format, v)
}

// cpuOf returns s's proxy CPU seconds, NaN for the direct row.
func cpuOf(s Sample) float64 {
	if s.Proxy == direct {
		return math.NaN()
	}
	return s.ProxyCPUSeconds
}

func (r *runner) samplesOf(part, test string, conc, size int) []Sample {
	var out []Sample
	for _, s := range r.res.Samples {
		if s.Part == part && s.Test == test && s.Concurrency == conc && s.BodyBytes == size {
			out = append(out, s)
		}
	}
	return out
}

func (r *runner) printL4() {
	rows := []string{direct, haproxySplice, haproxyPlain, lbdName}
	r.table(fmt.Sprintf("L4 bulk: one %s stream client → proxy → sink, timed until the sink has every byte", bytesName(r.o.BulkBytes)),
		r.samplesOf("l4", "bulk", 0, 0), rows, []col{
			{head: "Gbit/s", get: func(s Sample) float64 { return float64(s.Bytes) * 8 / s.Seconds / 1e9 }, format: "%.2f", ratios: []string{haproxySplice, direct}},
			{head: "CPU ms/GB", get: func(s Sample) float64 { return cpuOf(s) * 1e3 / (float64(s.Bytes) / 1e9) }, format: "%.1f", ratios: []string{haproxySplice}},
		})
	for _, w := range r.o.Workers {
		r.table(fmt.Sprintf("L4 connection rate: %d workers, connect + %d B echo + close, %v per run", w, echoSize, r.o.ConnDuration),
			r.samplesOf("l4", "connrate", w, 0), rows, []col{
				{head: "conn/s", get: func(s Sample) float64 { return float64(s.Conns) / s.Seconds }, format: "%.0f", ratios: []string{haproxySplice, direct}},
				{head: "CPU µs/conn", get: func(s Sample) float64 { return cpuOf(s) * 1e6 / float64(s.Conns) }, format: "%.0f", ratios: []string{haproxySplice}},
				{head: "errors", get: func(s Sample) float64 { return float64(s.Errors) }, format: "%.0f", sum: true},
			})
	}
}

func (r *runner) printMem(rows []string) {
	r.table(fmt.Sprintf("Memory: %d idle proxied TCP connections (one 64 B echo each), fresh proxy per run", r.idle),
		r.samplesOf("mem", "idle", 0, 0), rows, []col{
			{head: "RSS before MiB", get: func(s Sample) float64 { return mib(s.RSSBefore) }, format: "%.1f"},
			{head: "RSS after MiB", get: func(s Sample) float64 { return mib(s.RSSAfter) }, format: "%.1f"},
			{head: "B/conn", get: func(s Sample) float64 { return float64(s.RSSAfter-s.RSSBefore) / float64(s.Conns) }, format: "%.0f", ratios: []string{haproxyPlain}},
			{head: "fds/conn", get: func(s Sample) float64 { return float64(s.FDsAfter-s.FDsBefore) / float64(s.Conns) }, format: "%.2f"},
		})
}

func (r *runner) printL7() {
	rows := []string{direct, haproxyPlain, nginxName, lbdName}
	for _, size := range r.o.Sizes {
		for _, c := range r.o.WrkConns {
			r.table(fmt.Sprintf("L7 HTTP/1.1: %s body, wrk -t1 -c%d -d%v, keep-alive, 2 backends", bytesName(int64(size)), c, r.o.WrkDuration),
				r.samplesOf("l7", "http", c, size), rows, []col{
					{head: "req/s", get: func(s Sample) float64 { return s.ReqPerSec }, format: "%.0f", ratios: []string{haproxyPlain}},
					{head: "p50 µs", get: func(s Sample) float64 { return s.LatencyMicros["50"] }, format: "%.0f", ratios: []string{haproxyPlain}},
					{head: "p99 µs", get: func(s Sample) float64 { return s.LatencyMicros["99"] }, format: "%.0f", ratios: []string{haproxyPlain}},
					{head: "CPU µs/req", get: func(s Sample) float64 { return cpuOf(s) * 1e6 / float64(s.Requests) }, format: "%.1f", ratios: []string{haproxyPlain}},
					{head: "errors", get: func(s Sample) float64 { return float64(s.Errors) }, format: "%.0f", sum: true},
				})
		}
	}
}

// bytesName writes n as "13 B", "64 KiB", "2 GiB" when exact.
func bytesName(n int64) string {
	switch {
	case n >= 1<<30 && n%(1<<30) == 0:
		return fmt.Sprintf("%d GiB", n>>30)
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d B", n)
}
