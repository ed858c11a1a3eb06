// Package node assembles one lbd node from its configuration: it owns the
// admin socket and HTTP listener and every part (VRRP instances, frontends,
// pools), applies reloads in place and stops everything in order.
package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync"
	"time"

	"lbd/admin"
	"lbd/config"
	lbsync "lbd/sync"
)

// Options are what cmd/lbd hands to Run.
type Options struct {
	ConfigPath string
	Version    string
	Logger     *slog.Logger
	// Reload receives a value for every SIGHUP.
	Reload <-chan os.Signal
	// StopTimeout bounds the orderly stop after ctx is cancelled.
	StopTimeout time.Duration
	// VRRPChild is the command that starts the VRRP process (see
	// RunVRRPChild): lbd runs itself with -vrrp-child.
	VRRPChild []string
}

// DefaultStopTimeout bounds shutdown when Options.StopTimeout is zero.
const DefaultStopTimeout = 10 * time.Second

// Node is one running lbd.
type Node struct {
	opts    Options
	log     *slog.Logger
	started time.Time

	reloadMu sync.Mutex // serialises reloads; held while a reload is applied

	mu           sync.Mutex // guards the fields below
	cfg          *config.Config
	loadedAt     time.Time
	reloads      uint64
	reloadErrors uint64

	admin *admin.Server
	http  *httpListener
	dp    *dataPlane
	vr    *vrrpProc
	sync  *lbsync.Cluster // nil without [cluster] bind
}

// Run loads the configuration, starts every part and serves until ctx is
// done; then it stops every part within opts.StopTimeout. A configuration
// that does not load is returned as an error before anything starts.
func Run(ctx context.Context, opts Options) error {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.StopTimeout == 0 {
		opts.StopTimeout = DefaultStopTimeout
	}
	cfg, err := config.Load(opts.ConfigPath)
	if err != nil {
		return err
	}
	if err := supported(cfg); err != nil {
		return err
	}
	n := &Node{opts: opts, log: opts.Logger.With("component", "node"), started: time.Now(), cfg: cfg, loadedAt: time.Now()}
	n.dp = newDataPlane(opts.Logger.With("component", "proxy"))
	return n.run(ctx)
}

func (n *Node) run(ctx context.Context) error {
	cfg := n.config()
	srv, err := admin.Listen(cfg.Node.AdminSocket, n.opts.Logger.With("component", "admin"))
	if err != nil {
		return fmt.Errorf("node: %w", err)
	}
	n.admin = srv
	var wg sync.WaitGroup
	serveCtx, stopServe := context.WithCancel(context.Background())
	defer func() {
		stopServe()
		wg.Wait()
	}()

	if err := n.startCluster(cfg); err != nil {
		n.stop()
		return err
	}
	if err := n.dp.apply(cfg); err != nil {
		n.stop()
		return err
	}
	n.vr, err = startVRRPProc(n.opts.VRRPChild, n.dp, n.opts.Logger.With("component", "vrrp"))
	if err != nil {
		n.stop()
		return err
	}
	if err := n.vr.apply(cfg); err != nil {
		n.stop()
		return err
	}
	// The admin socket and HTTP listener answer once every part runs
	// (lbctl's requests wait in the socket's backlog until then).
	wg.Go(func() {
		if err := srv.Serve(serveCtx, n.handle); err != nil {
			n.log.Error("admin socket failed", "err", err)
		}
	})
	if err := n.startHTTP(cfg.Admin.Listen); err != nil {
		n.stop()
		return err
	}
	if n.sync != nil {
		stopWatch := make(chan struct{})
		var watch sync.WaitGroup
		watch.Go(func() { n.watchSecondOpinion(stopWatch) })
		defer func() { close(stopWatch); watch.Wait() }()
	}
	n.log.Info("lbd started", "node", cfg.Node.Name, "config", cfg.Path, "pid", os.Getpid(),
		"vrrp_instances", len(cfg.VRRP), "frontends", len(cfg.Frontends), "pools", len(cfg.Pools))

	for {
		select {
		case <-ctx.Done():
			return n.stop()
		case <-n.opts.Reload:
			n.Reload() // a refusal is logged by Reload
		}
	}
}

// stop ends every part within the stop timeout.
func (n *Node) stop() error {
	n.log.Info("stopping", "timeout", n.opts.StopTimeout)
	ctx, cancel := context.WithTimeout(context.Background(), n.opts.StopTimeout)
	defer cancel()
	var errs []error
	// VRRP first: masters hand the VIPs over (priority 0) while the proxy
	// still serves what reaches it, then the proxy finishes.
	if n.vr != nil {
		n.vr.close()
	}
	errs = append(errs, n.dp.stop(ctx))
	if n.sync != nil {
		n.sync.Close() // snapshots the tables to state_dir
	}
	if n.http != nil {
		errs = append(errs, n.http.stop(ctx))
	}
	errs = append(errs, n.admin.Close())
	if ctx.Err() != nil {
		n.log.Warn("connections still open after the stop timeout were cut", "timeout", n.opts.StopTimeout)
	}
	n.log.Info("stopped")
	return errors.Join(errs...)
}

// startCluster joins the cluster of [cluster] and hands its replicated
// tables to the proxy (sticky sessions, source-IP persistence, UDP flows).
func (n *Node) startCluster(cfg *config.Config) error {
	scfg, ok, err := lbsync.FromConfig(cfg)
	if err != nil {
		return fmt.Errorf("node: cluster: %w", err)
	}
	if !ok {
		return nil
	}
	c, err := lbsync.New(scfg, n.opts.Logger.With("component", "sync"))
	if err != nil {
		return fmt.Errorf("node: cluster: %w", err)
	}
	n.sync = c
	maxEntries := 0
	for _, p := range cfg.Pools {
		maxEntries = max(maxEntries, p.Sticky.MaxEntries)
	}
	n.dp.affinity = c.Uses(maxEntries, maxEntries, maxEntries)
	return nil
}

func (n *Node) config() *config.Config {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.cfg
}

// httpListener is the admin HTTP server on admin.listen.
type httpListener struct {
	addr string
	srv  *http.Server
	done chan struct{}
}

func (n *Node) startHTTP(addr string) error {
	if addr == "" {
		return nil
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("node: admin.listen %s: %w", addr, err)
	}
	h := &httpListener{
		addr: addr,
		srv: &http.Server{
			Handler:           admin.NewHTTPHandler(n.Status),
			ReadHeaderTimeout: 10 * time.Second,
			ErrorLog:          slog.NewLogLogger(n.opts.Logger.With("component", "admin-http").Handler(), slog.LevelDebug),
		},
		done: make(chan struct{}),
	}
	go func() {
		defer close(h.done)
		if err := h.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			n.log.Error("admin HTTP listener failed", "addr", addr, "err", err)
		}
	}()
	n.http = h
	return nil
}

func (h *httpListener) stop(ctx context.Context) error {
	err := h.srv.Shutdown(ctx)
	if err != nil {
		h.srv.Close()
	}
	<-h.done
	if err != nil {
		return fmt.Errorf("node: stopping admin HTTP: %w", err)
	}
	return nil
}
