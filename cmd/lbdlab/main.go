// Command lbdlab runs lbd in a network-namespace lab on this machine (as
// root): `lbdlab demo` is `make demo`, `lbdlab drill` is `make drill`, and
// `lbdlab soak` loads the master's proxy and counts false failovers, and
// `lbdlab probe` is the client the two start inside the lab.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"lbd/lab/drill"
	"lbd/lab/probe"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: lbdlab demo|drill|soak|probe [flags]")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	cmd, args := os.Args[1], os.Args[2:]
	fs := flag.NewFlagSet("lbdlab "+cmd, flag.ExitOnError)
	bin := fs.String("bin", "bin", "directory holding lbd and lbctl")
	var err error
	switch cmd {
	case "demo":
		fs.Parse(args)
		err = drill.Demo(ctx, options(*bin))
	case "drill":
		runs := fs.Int("runs", 20, "failovers per scenario and advert interval")
		keepalived := fs.Bool("keepalived", true, "run the same drill with Debian's keepalived as the anchor")
		adverts := fs.String("adverts", "100ms,1s", "advert intervals to drill, comma-separated")
		fs.Parse(args)
		dc := drill.DrillConfig{Runs: *runs, Keepalived: *keepalived}
		for _, a := range strings.Split(*adverts, ",") {
			d, perr := time.ParseDuration(strings.TrimSpace(a))
			if perr != nil {
				fmt.Fprintln(os.Stderr, "lbdlab: -adverts:", perr)
				os.Exit(2)
			}
			dc.Adverts = append(dc.Adverts, d)
		}
		err = drill.Drill(ctx, options(*bin), dc)
	case "soak":
		cfg := drill.SoakConfig{}
		fs.DurationVar(&cfg.Advert, "advert", 100*time.Millisecond, "advert_interval of both nodes")
		fs.DurationVar(&cfg.Duration, "duration", 5*time.Minute, "how long to load the master")
		fs.IntVar(&cfg.Streams, "streams", 16, "concurrent bulk streams through the master's proxy")
		fs.IntVar(&cfg.Burners, "burners", 6, "busy-looping processes competing for the CPU")
		fs.Parse(args)
		err = drill.Soak(ctx, options(*bin), cfg)
	case "burn":
		// A busy loop until killed: CPU pressure for soak.
		for ctx.Err() == nil {
			for i := 0; i < 1e7; i++ {
			}
		}
	case "probe":
		cfg := probe.Config{}
		fs.StringVar(&cfg.Target, "target", "198.18.0.100:80", "host:port to probe")
		fs.DurationVar(&cfg.Every, "every", 10*time.Millisecond, "probe interval")
		fs.DurationVar(&cfg.Timeout, "timeout", 200*time.Millisecond, "timeout of one probe")
		fs.BoolVar(&cfg.HTTP, "http", false, "send an HTTP GET")
		fs.Parse(args)
		err = probe.Run(ctx, cfg, os.Stdout)
	default:
		err = fmt.Errorf("unknown command %q", cmd)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "lbdlab:", err)
		os.Exit(1)
	}
}

func options(bin string) drill.Options {
	self, _ := os.Executable()
	abs, _ := filepath.Abs(bin)
	return drill.Options{
		LBD: filepath.Join(abs, "lbd"), LBCTL: filepath.Join(abs, "lbctl"),
		Probe: []string{self, "probe"}, Out: os.Stdout,
	}
}
