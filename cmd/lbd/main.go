// Command lbd is the lbd load-balancer daemon: VRRP, VIPs, the L4/L7 proxy
// and replicated session tables on one node. It runs in the foreground, as
// systemd expects; SIGHUP reloads the configuration, SIGTERM stops it.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"lbd/config"
	"lbd/node"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	var (
		cfgPath       = flag.String("config", "/etc/lbd/lbd.toml", "configuration `file`")
		check         = flag.Bool("check", false, "validate the configuration and exit: 0 valid, 1 not")
		printVersion  = flag.Bool("version", false, "print the version and exit")
		printDefaults = flag.Bool("print-defaults", false, "print every default setting as TOML and exit")
		logFormat     = flag.String("log-format", "text", "log format: text or json")
		logLevel      = flag.String("log-level", "info", "log level: debug, info, warn or error")
		vrrpChild     = flag.Bool("vrrp-child", false, "internal: run as lbd's VRRP process, controlled on fd 3")
	)
	flag.Parse()
	switch {
	case *printVersion:
		fmt.Println("lbd", version)
		return
	case *printDefaults:
		os.Stdout.Write(config.DefaultsTOML())
		return
	case *check:
		if _, err := config.Load(*cfgPath); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		fmt.Printf("lbd: %s: configuration is valid\n", *cfgPath)
		return
	}
	log, err := newLogger(*logFormat, *logLevel)
	if err != nil {
		fmt.Fprintln(os.Stderr, "lbd:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if *vrrpChild {
		// The parent reloads; a SIGHUP sent to the whole group is not ours.
		signal.Ignore(syscall.SIGHUP)
		if err := node.RunVRRPChild(ctx, os.NewFile(3, "vrrp-ctl"), log.With("component", "vrrp", "pid", os.Getpid())); err != nil {
			log.Error("VRRP process failed", "err", err)
			os.Exit(1)
		}
		return
	}
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	self, err := os.Executable()
	if err != nil {
		log.Error("lbd cannot find its own executable", "err", err)
		os.Exit(1)
	}
	err = node.Run(ctx, node.Options{
		ConfigPath: *cfgPath, Version: version, Logger: log, Reload: hup,
		VRRPChild: []string{self, "-vrrp-child", "-log-format", *logFormat, "-log-level", *logLevel},
	})
	if err != nil {
		var cerr *config.Errors
		if errors.As(err, &cerr) {
			fmt.Fprintln(os.Stderr, err)
		} else {
			log.Error("lbd failed", "err", err)
		}
		os.Exit(1)
	}
}

func newLogger(format, level string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("-log-level %q: want debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(os.Stderr, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(os.Stderr, opts)), nil
	}
	return nil, fmt.Errorf("-log-format %q: want text or json", format)
}
