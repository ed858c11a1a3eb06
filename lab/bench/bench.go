package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"slices"
	"strings"
	"time"
)

// Parts of the benchmark, in the order they run.
var Parts = []string{"l4", "mem", "l7"}

// Options configure Run. Zero values take the defaults of MEASURING.md.
type Options struct {
	Bin     string   // directory holding lbd (default "bin")
	HAProxy string   // program paths (default: found in $PATH)
	Nginx   string   //
	Wrk     string   //
	Runs    int      // repetitions of every measurement (default 5)
	Only    []string // parts to run (default: all of Parts)
	Proxies []string // rows to run (default: all); ratios need their base row

	ProxyCPU, LoadCPU int // the proxy alone on ProxyCPU (0); load and backends on LoadCPU (1)

	BulkBytes    int64         // size of the bulk stream (default 2 GiB)
	ConnDuration time.Duration // length of one connection-rate run (default 5s)
	Workers      []int         // concurrent connection-rate workers (default 8 and 64)
	IdleConns    int           // idle connections of the mem part (default 10000)
	WrkDuration  time.Duration // length of one wrk run (default 10s; whole seconds)
	WrkConns     []int         // wrk connections (default 64 and 256)
	Sizes        []int         // response body sizes in bytes (default 13 and 65536)

	Command  []string  // the command line, printed at the top
	Out      io.Writer // tables (default os.Stdout)
	Progress io.Writer // one line per measurement (default os.Stderr)
	JSON     string    // when set, every raw measurement is written to this file
}

func (o *Options) setDefaults() {
	def := func(s *string, v string) {
		if *s == "" {
			*s = v
		}
	}
	def(&o.Bin, "bin")
	def(&o.HAProxy, "haproxy")
	def(&o.Nginx, "nginx")
	def(&o.Wrk, "wrk")
	if o.Runs == 0 {
		o.Runs = 5
	}
	if len(o.Only) == 0 {
		o.Only = Parts
	}
	if o.ProxyCPU == 0 && o.LoadCPU == 0 {
		o.LoadCPU = 1
	}
	if o.BulkBytes == 0 {
		o.BulkBytes = 2 << 30
	}
	if o.ConnDuration == 0 {
		o.ConnDuration = 5 * time.Second
	}
	if len(o.Workers) == 0 {
		o.Workers = []int{8, 64}
	}
	if o.IdleConns == 0 {
		o.IdleConns = 10000
	}
	if o.WrkDuration == 0 {
		o.WrkDuration = 10 * time.Second
	}
	if len(o.WrkConns) == 0 {
		o.WrkConns = []int{64, 256}
	}
	if len(o.Sizes) == 0 {
		o.Sizes = []int{13, 64 << 10}
	}
	if o.Out == nil {
		o.Out = os.Stdout
	}
	if o.Progress == nil {
		o.Progress = os.Stderr
	}
}

func (o *Options) validate() error {
	var errs []error
	for _, p := range o.Only {
		if !slices.Contains(Parts, p) {
			errs = append(errs, fmt.Errorf("bench: unknown part %q (want %s)", p, strings.Join(Parts, ", ")))
		}
	}
	all := []string{direct, haproxySplice, haproxyPlain, nginxName, lbdName}
	for _, p := range o.Proxies {
		if !slices.Contains(all, p) {
			errs = append(errs, fmt.Errorf("bench: unknown proxy %q (want %s)", p, strings.Join(all, ", ")))
		}
	}
	if o.Runs < 1 {
		errs = append(errs, fmt.Errorf("bench: runs %d: want at least 1", o.Runs))
	}
	if o.ProxyCPU == o.LoadCPU || o.ProxyCPU < 0 || o.LoadCPU < 0 {
		errs = append(errs, fmt.Errorf("bench: proxy cpu%d and load cpu%d must be two different CPUs", o.ProxyCPU, o.LoadCPU))
	}
	if n := runtime.NumCPU(); max(o.ProxyCPU, o.LoadCPU) >= n {
		errs = append(errs, fmt.Errorf("bench: cpu%d and cpu%d needed; this process may use %d CPUs", o.ProxyCPU, o.LoadCPU, n))
	}
	if o.BulkBytes < 1 || o.IdleConns < 1 || o.ConnDuration <= 0 || o.WrkDuration < time.Second {
		errs = append(errs, errors.New("bench: bulk size, idle connections and durations must be positive (wrk: at least 1s)"))
	}
	for _, n := range slices.Concat(o.Workers, o.WrkConns, o.Sizes) {
		if n < 1 {
			errs = append(errs, fmt.Errorf("bench: %d: worker, connection counts and sizes must be positive", n))
		}
	}
	return errors.Join(errs...)
}

// Sample is one raw measurement: one row, one round, one test.
type Sample struct {
	Part        string  `json:"part"`  // l4, mem, l7
	Test        string  `json:"test"`  // bulk, connrate, idle, http
	Proxy       string  `json:"proxy"` // direct, haproxy-splice, haproxy, nginx, lbd
	Round       int     `json:"round"`
	Concurrency int     `json:"concurrency,omitempty"` // connection-rate workers or wrk connections
	BodyBytes   int     `json:"body_bytes,omitempty"`  // l7 response body
	Seconds     float64 `json:"seconds"`               // wall time measured
	// ProxyCPUSeconds is utime+stime the proxy used during the test; absent
	// for direct.
	ProxyCPUSeconds float64 `json:"proxy_cpu_seconds,omitempty"`
	Bytes           int64   `json:"bytes,omitempty"`    // bulk: bytes the receiver got
	Conns           int64   `json:"conns,omitempty"`    // connections completed or held
	Requests        int64   `json:"requests,omitempty"` // wrk's count
	ReqPerSec       float64 `json:"req_per_sec,omitempty"`
	// LatencyMicros are wrk's latency percentiles ("50", "75", "90", "99").
	LatencyMicros map[string]float64 `json:"latency_us,omitempty"`
	Errors        int64              `json:"errors"` // failed connections or wrk errors
	FirstError    string             `json:"first_error,omitempty"`
	RSSBefore     int64              `json:"rss_before_bytes,omitempty"`
	RSSAfter      int64              `json:"rss_after_bytes,omitempty"`
	FDsBefore     int                `json:"fds_before,omitempty"`
	FDsAfter      int                `json:"fds_after,omitempty"`
	Raw           string             `json:"raw,omitempty"` // wrk's output
}

// Results is what -json writes.
type Results struct {
	Started  time.Time         `json:"started"`
	Command  []string          `json:"command"`
	Versions map[string]string `json:"versions"`
	Options  map[string]any    `json:"options"`
	Samples  []Sample          `json:"samples"`
}

type runner struct {
	o       *Options
	dir     string // temporary: configurations, sockets, logs
	fdLimit int    // RLIMIT_NOFILE of this process and the proxies
	idle    int    // idle connections of the mem part (IdleConns, or what fits)
	res     *Results
}

// Run runs the parts of the benchmark o selects and prints their tables.
// It pins the calling process to o.LoadCPU and raises its open file limit.
// Every process and backend it starts is stopped before it returns.
func Run(ctx context.Context, o Options) (err error) {
	o.setDefaults()
	if err := o.validate(); err != nil {
		return err
	}
	if err := pinSelf(o.LoadCPU); err != nil {
		return err
	}
	// Idle connections: two sockets each in this process (client and
	// backend) and in a proxy (client and backend); ask for room to spare.
	// The proxies inherit the limit.
	fdLimit, err := raiseNoFile(uint64(max(6*o.IdleConns+1000, 65536)))
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "lbdbench-")
	if err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	defer os.RemoveAll(dir)
	r := &runner{o: &o, dir: dir, fdLimit: int(min(fdLimit, 1<<20)), idle: o.IdleConns, res: &Results{
		Started: time.Now().UTC(), Command: o.Command, Versions: versions(&o),
		Options: map[string]any{
			"runs": o.Runs, "only": o.Only, "proxies": o.Proxies, "proxy_cpu": o.ProxyCPU, "load_cpu": o.LoadCPU,
			"bulk_bytes": o.BulkBytes, "conn_duration": o.ConnDuration.String(), "workers": o.Workers,
			"idle_conns": o.IdleConns, "fd_limit": fdLimit, "wrk_duration": o.WrkDuration.String(), "wrk_conns": o.WrkConns, "sizes": o.Sizes,
		},
	}}
	r.header()
	if o.JSON != "" {
		defer func() {
			if jerr := r.writeJSON(); jerr != nil {
				err = errors.Join(err, jerr)
			}
		}()
	}
	for _, part := range Parts {
		if !slices.Contains(o.Only, part) {
			continue
		}
		var err error
		switch part {
		case "l4":
			err = r.l4(ctx)
		case "mem":
			err = r.mem(ctx)
		case "l7":
			err = r.l7(ctx)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func (r *runner) writeJSON() error {
	b, err := json.MarshalIndent(r.res, "", "  ")
	if err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	if err := os.WriteFile(r.o.JSON, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	return nil
}

// rows returns the rows of a part that -proxies selects, in order.
func (r *runner) rows(all ...string) []string {
	if len(r.o.Proxies) == 0 {
		return all
	}
	var out []string
	for _, p := range all {
		if slices.Contains(r.o.Proxies, p) {
			out = append(out, p)
		}
	}
	return out
}

// startAll starts the named proxies (direct needs nothing) serving routes.
// stop ends them all; it is to be called even when startAll fails.
func (r *runner) startAll(ctx context.Context, names []string, routes []route) (ts []*target, stop func(), err error) {
	stop = func() {
		for _, t := range ts {
			if t.p != nil {
				t.p.stop()
			}
		}
	}
	for _, n := range names {
		if n == direct {
			ts = append(ts, directTarget(routes))
			continue
		}
		t, err := startTarget(ctx, n, r.o, r.fdLimit, r.dir, routes)
		if err != nil {
			return ts, stop, err
		}
		ts = append(ts, t)
	}
	return ts, stop, nil
}

// checkAlive fails when a proxy has exited in the middle of a part.
func checkAlive(ts []*target) error {
	for _, t := range ts {
		if t.p != nil && t.p.exited() {
			return fmt.Errorf("bench: %s exited (%v); output ends:\n%s", t.name, t.p.err, t.p.out.String())
		}
	}
	return nil
}

func (r *runner) add(s Sample) {
	r.res.Samples = append(r.res.Samples, s)
}

func (r *runner) progress(format string, args ...any) {
	fmt.Fprintf(r.o.Progress, format+"\n", args...)
}
