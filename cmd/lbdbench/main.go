// Command lbdbench is `make bench`: lbd's proxies side by side with
// HAProxy, nginx and no proxy at all, on loopback, the proxy pinned alone
// to one CPU (see lab/bench and MEASURING.md). It prints tables on stdout,
// progress on stderr, and with -json every raw measurement.
//
//	lbdbench [-runs 5] [-only l4,mem,l7] [-json FILE] [-duration 10s] ...
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"lbd/lab/bench"
)

func main() {
	var o bench.Options
	flag.StringVar(&o.Bin, "bin", "bin", "`directory` holding lbd")
	flag.IntVar(&o.Runs, "runs", 5, "interleaved repetitions of every measurement (medians are reported)")
	only := flag.String("only", "", "comma-separated `parts` to run: l4, mem, l7 (default all)")
	proxies := flag.String("proxies", "", "comma-separated `rows` to run: direct, haproxy-splice, haproxy, nginx, lbd (default all)")
	flag.StringVar(&o.JSON, "json", "", "write every raw measurement to this `file`")
	flag.DurationVar(&o.WrkDuration, "duration", 0, "length of one wrk run, whole seconds (default 10s)")
	flag.DurationVar(&o.ConnDuration, "conn-duration", 0, "length of one connection-rate run (default 5s)")
	bulk := flag.String("bulk", "2GiB", "`size` of the bulk stream")
	workers := flag.String("workers", "8,64", "connection-rate worker `counts`")
	conns := flag.String("conns", "64,256", "wrk connection `counts`")
	sizes := flag.String("sizes", "13,64KiB", "HTTP response body `sizes`")
	flag.IntVar(&o.IdleConns, "idle", 10000, "idle connections held open in the mem part")
	flag.IntVar(&o.ProxyCPU, "proxy-cpu", 0, "`cpu` the proxy under test runs on alone")
	flag.IntVar(&o.LoadCPU, "load-cpu", 1, "`cpu` of the load generators and backends")
	flag.StringVar(&o.HAProxy, "haproxy", "haproxy", "HAProxy `program`")
	flag.StringVar(&o.Nginx, "nginx", "nginx", "nginx `program`")
	flag.StringVar(&o.Wrk, "wrk", "wrk", "wrk `program`")
	flag.Parse()
	if flag.NArg() > 0 {
		fail(fmt.Errorf("unexpected arguments %q", flag.Args()))
	}
	o.Only, o.Proxies, o.Command = bench.SplitList(*only), bench.SplitList(*proxies), os.Args
	var err error
	if o.BulkBytes, err = bench.ParseSize(*bulk); err != nil {
		fail(err)
	}
	for _, l := range []struct {
		s   string
		dst *[]int
	}{{*workers, &o.Workers}, {*conns, &o.WrkConns}, {*sizes, &o.Sizes}} {
		if *l.dst, err = bench.ParseSizes(l.s); err != nil {
			fail(err)
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := bench.Run(ctx, o); err != nil {
		stop()
		fail(err)
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "lbdbench:", err)
	os.Exit(1)
}
