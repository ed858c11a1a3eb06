package proxy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"lbd/config"
	"lbd/proxy/balance"
)

// maxDatagram is the largest UDP payload relayed.
const maxDatagram = 65535

// defaultUDPIdle ends a UDP flow that has seen no datagram for this long
// when the frontend sets no idle_timeout.
const defaultUDPIdle = 30 * time.Second

// UDPFrontend is a mode = "udp" frontend. Each client address is a flow
// bound to one backend for as long as datagrams keep coming (idle_timeout);
// replies leave from the frontend's own address, so the client sees the VIP
// answer. The flow → backend choice is kept in an Affinity table, which
// sync replicates so a flow keeps its backend across a failover.
type UDPFrontend struct {
	name     string
	conn     *net.UDPConn
	cfg      atomic.Pointer[config.Frontend]
	pool     atomic.Pointer[Pool]
	affinity Affinity
	log      *slog.Logger

	mu      sync.Mutex // guards flows and closing
	flows   map[netip.AddrPort]*udpFlow
	closing bool
	wg      sync.WaitGroup // read loop, reaper, one per flow

	stopped chan struct{}
	total   atomic.Uint64
	dropped atomic.Uint64 // datagrams without a usable backend

	serving // new flows can be opened (the proxy track)
}

type udpFlow struct {
	client   netip.AddrPort
	upstream *net.UDPConn
	b        *Backend
	last     atomic.Int64 // unix ns of the latest datagram either way
}

// ListenUDP binds the frontend's address (with IP_FREEBIND). aff may be nil
// for a table local to this frontend.
func ListenUDP(cfg config.Frontend, pool *Pool, aff Affinity, log *slog.Logger) (*UDPFrontend, error) {
	c, err := listenUDP(context.Background(), cfg.Bind)
	if err != nil {
		return nil, fmt.Errorf("proxy: frontend %s: listening on %s: %w", cfg.Name, cfg.Bind, err)
	}
	if aff == nil {
		aff = NewLocalAffinity()
	}
	f := &UDPFrontend{name: cfg.Name, conn: c, affinity: aff, log: log.With("frontend", cfg.Name),
		flows: make(map[netip.AddrPort]*udpFlow), stopped: make(chan struct{})}
	f.cfg.Store(&cfg)
	f.pool.Store(pool)
	return f, nil
}

// Addr returns the bound address.
func (f *UDPFrontend) Addr() net.Addr { return f.conn.LocalAddr() }

// Config returns the frontend's current configuration.
func (f *UDPFrontend) Config() config.Frontend { return *f.cfg.Load() }

// Pool returns the pool new flows go to.
func (f *UDPFrontend) Pool() *Pool { return f.pool.Load() }

// Update applies a reloaded configuration of the same bind address.
func (f *UDPFrontend) Update(cfg config.Frontend, pools Pools) {
	f.cfg.Store(&cfg)
	f.pool.Store(pools[cfg.DefaultPool])
}

func (f *UDPFrontend) idle() time.Duration {
	if d := f.cfg.Load().IdleTimeout.D(); d > 0 {
		return d
	}
	return defaultUDPIdle
}

// Start runs the read loop and the idle reaper until Close.
func (f *UDPFrontend) Start() {
	f.wg.Add(2)
	go func() { defer f.wg.Done(); f.readLoop() }()
	go func() { defer f.wg.Done(); f.reap() }()
}

func (f *UDPFrontend) readLoop() {
	buf := make([]byte, maxDatagram)
	var delay time.Duration
	for {
		n, client, err := f.conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				f.mu.Lock()
				if !f.closing {
					f.lost.Store(true)
					f.log.Error("the socket closed: this frontend no longer serves")
				}
				f.mu.Unlock()
				return
			}
			// Back off rather than spin on an error that persists.
			f.failed()
			delay = min(max(2*delay, time.Millisecond), time.Second)
			f.log.Debug("read failed", "err", err, "retry_in", delay)
			select {
			case <-f.stopped:
				return
			case <-time.After(delay):
			}
			continue
		}
		delay = 0
		fl := f.flow(client)
		if fl == nil {
			f.dropped.Add(1)
			continue
		}
		fl.last.Store(time.Now().UnixNano())
		if _, err := fl.upstream.Write(buf[:n]); err != nil {
			f.log.Debug("relaying to backend failed", "backend", fl.b.Address(), "err", err)
			continue
		}
		fl.b.bytesIn.Add(uint64(n))
	}
}

// flow returns the client's flow, creating it (and its backend socket and
// reply goroutine) on the first datagram.
func (f *UDPFrontend) flow(client netip.AddrPort) *udpFlow {
	f.mu.Lock()
	fl := f.flows[client]
	closing := f.closing
	f.mu.Unlock()
	if fl != nil || closing {
		return fl
	}
	pool := f.pool.Load()
	key := client.String()
	b := f.sticky(pool, key)
	if b == nil {
		var ex balance.Exclude
		b = pool.Pick(balance.HashAddr(client.Addr()), &ex)
		if b == nil {
			return nil
		}
		b.Release() // counted below, once the flow exists
	}
	c, err := net.Dial("udp", b.Address())
	if err != nil {
		f.failed()
		f.log.Warn("opening backend socket failed", "backend", b.Address(), "err", err)
		return nil
	}
	f.ok()
	up := c.(*net.UDPConn)
	b.Inc()
	b.total.Add(1)
	f.total.Add(1)
	f.affinity.Store(key, b.Address(), f.idle())
	fl = &udpFlow{client: client, upstream: up, b: b}
	fl.last.Store(time.Now().UnixNano())
	f.mu.Lock()
	if f.closing {
		f.mu.Unlock()
		up.Close()
		b.Dec()
		return nil
	}
	f.flows[client] = fl
	f.wg.Add(1)
	f.mu.Unlock()
	go func() { defer f.wg.Done(); f.replies(fl) }()
	return fl
}

// sticky returns the backend the affinity table holds for key, if it is
// still in the pool and usable.
func (f *UDPFrontend) sticky(pool *Pool, key string) *Backend {
	addr, ok := f.affinity.Lookup(key)
	if !ok {
		return nil
	}
	b := pool.Backend(addr)
	if b == nil || !b.Usable() {
		return nil
	}
	return b
}

// replies relays the backend's datagrams to the client from the frontend's
// address, until the flow is closed.
func (f *UDPFrontend) replies(fl *udpFlow) {
	buf := make([]byte, maxDatagram)
	for {
		n, err := fl.upstream.Read(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue // ICMP port unreachable from a backend restarting
		}
		fl.last.Store(time.Now().UnixNano())
		if _, err := f.conn.WriteToUDPAddrPort(buf[:n], fl.client); err != nil {
			f.log.Debug("replying to client failed", "client", fl.client, "err", err)
			continue
		}
		fl.b.bytesOut.Add(uint64(n))
	}
}

// reap ends flows idle for longer than idle_timeout.
func (f *UDPFrontend) reap() {
	for {
		idle := f.idle()
		t := time.NewTimer(max(idle/4, 10*time.Millisecond))
		select {
		case <-f.stopped:
			t.Stop()
			return
		case <-t.C:
		}
		cutoff := time.Now().Add(-idle).UnixNano()
		var old []*udpFlow
		f.mu.Lock()
		for k, fl := range f.flows {
			if fl.last.Load() < cutoff {
				delete(f.flows, k)
				fl.b.Dec() // with the flow gone, so that counts agree
				old = append(old, fl)
			}
		}
		f.mu.Unlock()
		for _, fl := range old {
			fl.upstream.Close()
		}
	}
}

// Flows returns the number of live flows.
func (f *UDPFrontend) Flows() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.flows)
}

// Stats returns the frontend's counters; Active counts live flows.
func (f *UDPFrontend) Stats() FrontendStats {
	return FrontendStats{Active: int64(f.Flows()), Total: f.total.Load(), NoBackend: f.dropped.Load()}
}

// Close stops the frontend, ends every flow and waits for its goroutines.
// UDP has no connections to finish, so ctx is not waited on.
func (f *UDPFrontend) Close(ctx context.Context) error {
	f.mu.Lock()
	if f.closing {
		f.mu.Unlock()
		return nil
	}
	f.closing = true
	flows := f.flows
	f.flows = map[netip.AddrPort]*udpFlow{}
	f.mu.Unlock()
	close(f.stopped)
	err := f.conn.Close()
	for _, fl := range flows {
		fl.upstream.Close()
		fl.b.Dec()
	}
	f.wg.Wait()
	if err != nil && !errors.Is(err, net.ErrClosed) {
		return fmt.Errorf("proxy: frontend %s: %w", f.name, err)
	}
	return nil
}
