package lbsync

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/memberlist"
)

// Timeouts of sync streams.
const (
	handshakeTimeout = 5 * time.Second
	dialTimeout      = 5 * time.Second
	leaveTimeout     = time.Second
	tcpTimeout       = 2 * time.Second // memberlist's streams (push/pull, joins): a LAN's
	maxTables        = 256             // tables a peer may create here
)

// Cluster is this node's membership in the cluster and the owner of its
// replicated tables. It owns every goroutine it starts; Close stops them
// and waits.
type Cluster struct {
	cfg  Config
	log  *slog.Logger
	self string
	// incarnation tells this process from an earlier one of the same node:
	// a peer resumes a broken stream only to the incarnation it was
	// feeding, which holds what it was sent.
	incarnation uint64
	names       *nodeNames
	now         func() int64 // unix ns: clock.Load, or a fake in tests
	clock       atomic.Int64 // unix ns, updated every clockTick by clockLoop
	tombTTL     int64
	stats       counters

	ml      *memberlist.Memberlist // nil in tests of the tables alone
	tr      *demuxTransport
	leaving atomic.Bool // Close has begun: said in the node's metadata

	out   outbox
	feeds atomic.Pointer[[]*feed] // connected feeds the flusher fans out to

	mu      sync.Mutex // guards the fields below
	tables  map[string]*Table
	inbound map[net.Conn]struct{}
	peers   map[string]*feed // the feed to each member, for Peers
	closing bool

	members  memberSet
	memberCh chan struct{} // membership changed (capacity 1)

	snapMu   sync.Mutex // serialises snapshots
	stop     chan struct{}
	wg       sync.WaitGroup
	closed   sync.Once
	closeErr error
}

// newCluster returns a cluster with tables and no network.
func newCluster(cfg Config, logger *slog.Logger) *Cluster {
	cfg.withDefaults()
	c := &Cluster{cfg: cfg, log: logger, self: cfg.NodeName, names: newNodeNames(cfg.NodeName),
		tombTTL: int64(cfg.TombstoneTTL),
		tables:  map[string]*Table{}, inbound: map[net.Conn]struct{}{}, peers: map[string]*feed{},
		memberCh: make(chan struct{}, 1), stop: make(chan struct{})}
	c.clock.Store(time.Now().UnixNano())
	c.now = c.clock.Load
	for c.incarnation == 0 {
		var b [8]byte
		rand.Read(b[:])
		c.incarnation = binary.LittleEndian.Uint64(b[:])
	}
	c.out.wake = make(chan struct{}, 1)
	c.members.init()
	c.feeds.Store(&[]*feed{})
	return c
}

// New loads the snapshot from cfg.StateDir (a bad one is logged and
// ignored), starts memberlist on cfg.Bind and joins cfg.Peers in the
// background, retrying while alone. Peers then stream their tables to this
// node and it streams its own to them.
func New(cfg Config, logger *slog.Logger) (*Cluster, error) {
	if err := cfg.check(); err != nil {
		return nil, err
	}
	c := newCluster(cfg, logger.With("component", "sync"))
	if cfg.StateDir != "" {
		if err := os.MkdirAll(cfg.StateDir, 0o750); err != nil {
			return nil, fmt.Errorf("sync: state directory: %w", err)
		}
		c.restore()
	}
	if err := c.start(); err != nil {
		return nil, err
	}
	return c, nil
}

// start opens the transport and memberlist and starts the goroutines.
func (c *Cluster) start() error {
	mlog := log.New(&mlWriter{log: c.log.With("part", "memberlist"), rejected: &c.stats.rejectedPackets}, "", 0)
	nt, err := listen(c.cfg.Bind, mlog)
	if err != nil {
		return err
	}
	c.tr = newDemuxTransport(nt, c.acceptSync)
	mc := memberlist.DefaultLANConfig()
	mc.Name = c.self
	mc.Transport = c.tr
	mc.Events = events{c}
	mc.Delegate = delegate{c}
	mc.Logger = mlog
	mc.TCPTimeout = tcpTimeout
	if len(c.cfg.SecretKey) > 0 {
		if mc.Keyring, err = memberlist.NewKeyring(nil, c.cfg.SecretKey); err != nil {
			c.tr.Shutdown()
			return fmt.Errorf("sync: keyring: %w", err)
		}
	}
	if c.cfg.tune != nil {
		c.cfg.tune(mc)
	}
	if c.ml, err = memberlist.Create(mc); err != nil {
		c.tr.Shutdown()
		return fmt.Errorf("sync: starting memberlist: %w", err)
	}
	c.wg.Add(5)
	go c.clockLoop()
	go c.flushLoop()
	go c.manageFeeds()
	go c.joinLoop()
	go c.janitor()
	c.log.Info("cluster started", "node", c.self, "addr", c.Addr().String(), "encrypted", len(c.cfg.SecretKey) > 0)
	return nil
}

// listen opens memberlist's TCP and UDP listeners on bind; with port 0 it
// retries when the TCP port it got is taken for UDP.
func listen(bind string, mlog *log.Logger) (*memberlist.NetTransport, error) {
	host, ps, err := net.SplitHostPort(bind)
	if err != nil {
		return nil, fmt.Errorf("sync: bind %q: %w", bind, err)
	}
	port, err := strconv.Atoi(ps)
	if err != nil || port < 0 || port > 65535 {
		return nil, fmt.Errorf("sync: bind %q: bad port", bind)
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		ips, lerr := net.LookupIP(host)
		if lerr != nil || len(ips) == 0 {
			return nil, fmt.Errorf("sync: bind %q: %w", bind, errors.Join(err, lerr))
		}
		ip, _ = netip.AddrFromSlice(ips[0])
	}
	cfg := &memberlist.NetTransportConfig{BindAddrs: []string{ip.Unmap().String()}, BindPort: port, Logger: mlog}
	for try := 0; ; try++ {
		nt, err := memberlist.NewNetTransport(cfg)
		if err == nil {
			return nt, nil
		}
		if port != 0 || try == 9 || !strings.Contains(err.Error(), "address already in use") {
			return nil, fmt.Errorf("sync: listening on %s: %w", bind, err)
		}
	}
}

// Addr returns the address gossip and sync streams are bound to.
func (c *Cluster) Addr() netip.AddrPort {
	if c.ml == nil {
		return netip.AddrPort{}
	}
	n := c.ml.LocalNode()
	ip, _ := netip.AddrFromSlice(n.Addr)
	return netip.AddrPortFrom(ip.Unmap(), n.Port)
}

// Name returns this node's name.
func (c *Cluster) Name() string { return c.self }

// Table returns the table called name, creating it. maxEntries bounds it;
// calling Table again with another bound changes it, and with 0 keeps it
// (a new table then gets Config.DefaultMaxEntries). A table a peer created
// here first keeps the lock striping chosen for the peer's bound.
func (c *Cluster) Table(name string, maxEntries int) *Table {
	c.mu.Lock()
	t := c.tables[name]
	if t == nil {
		if maxEntries <= 0 {
			maxEntries = c.cfg.DefaultMaxEntries
		}
		t = newTable(c, name, maxEntries)
		c.tables[name] = t
		c.mu.Unlock()
		return t
	}
	c.mu.Unlock()
	if maxEntries > 0 && int(t.max.Load()) != maxEntries {
		t.setMax(maxEntries)
	}
	return t
}

// tableFor returns the table a peer's message names, creating it with the
// peer's bound; nil when there are already maxTables tables.
func (c *Cluster) tableFor(name []byte, max uint64) *Table {
	c.mu.Lock()
	defer c.mu.Unlock()
	if t := c.tables[string(name)]; t != nil {
		return t
	}
	if len(c.tables) >= maxTables {
		return nil
	}
	n := c.cfg.DefaultMaxEntries
	if max > 0 && max <= 1<<28 {
		n = int(max)
	}
	t := newTable(c, string(name), n)
	c.tables[t.name] = t
	return t
}

// Tables returns the tables, sorted by name.
func (c *Cluster) Tables() []*Table {
	c.mu.Lock()
	ts := make([]*Table, 0, len(c.tables))
	for _, t := range c.tables {
		ts = append(ts, t)
	}
	c.mu.Unlock()
	slices.SortFunc(ts, func(a, b *Table) int { return strings.Compare(a.name, b.name) })
	return ts
}

// Close leaves the cluster, stops every goroutine and connection, waits for
// them, then writes a last snapshot. It returns the snapshot's error.
func (c *Cluster) Close() error {
	c.closed.Do(func() {
		c.mu.Lock()
		c.closing = true
		conns := make([]net.Conn, 0, len(c.inbound))
		for conn := range c.inbound {
			conns = append(conns, conn)
		}
		c.mu.Unlock()
		if c.ml != nil {
			c.leaving.Store(true)
			if err := c.ml.UpdateNode(leaveTimeout); err != nil {
				c.log.Warn("announcing the shutdown", "err", err)
			}
			if err := c.ml.Leave(leaveTimeout); err != nil {
				c.log.Warn("leaving the cluster", "err", err)
			}
			if err := c.ml.Shutdown(); err != nil {
				c.log.Warn("stopping memberlist", "err", err)
			}
		}
		close(c.stop)
		for _, conn := range conns {
			conn.Close()
		}
		c.wg.Wait()
		if c.cfg.StateDir != "" {
			c.closeErr = c.snapshot()
		}
		c.log.Info("cluster stopped", "node", c.self)
	})
	return c.closeErr
}
