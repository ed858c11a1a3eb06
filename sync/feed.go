package lbsync

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"sync"
	"time"
)

// maxQueued bounds the bytes of deltas waiting for one member. A member that
// falls further behind has its stream reset and gets a full-state transfer.
const maxQueued = 64 << 20

var errFellBehind = errors.New("sync: peer fell behind")

// feed is the stream from this node to one other member: on each
// connection it sends the whole of every table (the full-state transfer),
// then every local write as it happens. Writes made during the transfer are
// queued and sent between chunks; the receiver merges both by version, so
// their order does not matter.
type feed struct {
	c      *Cluster
	name   string // the member's name
	addr   string // its gossip address
	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{}
	wake   chan struct{} // capacity 1

	mu     sync.Mutex // guards the fields below
	q      []frame
	qBytes int
	broken bool     // the queue overflowed; the connection is being reset
	conn   net.Conn // the current connection, closed on overflow

	progress progress // what the member has applied: lbctl sessions' lag
}

// frame is one encoded delta message waiting for a member.
type frame struct {
	b       []byte
	records int
	at      int64 // unix ns when the writes were taken from the outbox
}

func (c *Cluster) startFeed(name, addr string) *feed {
	f := &feed{c: c, name: name, addr: addr, done: make(chan struct{}), wake: make(chan struct{}, 1)}
	f.ctx, f.cancel = context.WithCancel(context.Background())
	f.progress.init(preciseNow())
	c.mu.Lock()
	c.peers[name] = f
	c.mu.Unlock()
	go f.run()
	return f
}

// stopFeed stops f and waits for it.
func (f *feed) stopFeed() {
	f.cancel()
	<-f.done
	f.c.mu.Lock()
	if f.c.peers[f.name] == f {
		delete(f.c.peers, f.name)
	}
	f.c.mu.Unlock()
}

// manageFeeds keeps one feed per alive member, following memberlist.
func (c *Cluster) manageFeeds() {
	defer c.wg.Done()
	feeds := map[string]*feed{}
	defer func() {
		for _, f := range feeds {
			f.cancel()
		}
		for _, f := range feeds {
			f.stopFeed()
		}
	}()
	for {
		select {
		case <-c.stop:
			return
		case <-c.memberCh:
		}
		want := c.alivePeers()
		for name, f := range feeds {
			if want[name] != f.addr {
				f.stopFeed()
				delete(feeds, name)
			}
		}
		for name, addr := range want {
			if feeds[name] == nil {
				feeds[name] = c.startFeed(name, addr)
			}
		}
	}
}

func (f *feed) run() {
	defer close(f.done)
	log := f.c.log.With("peer", f.name, "addr", f.addr)
	backoff := 50 * time.Millisecond
	for {
		start := time.Now()
		err := f.session()
		if f.ctx.Err() != nil {
			return
		}
		switch {
		case errors.Is(err, errRejected):
			f.c.stats.rejectedStreams.Add(1)
			log.Error("sync stream refused: the cluster key differs", "err", err)
		case errors.Is(err, errFellBehind):
			f.c.stats.feedResets.Add(1)
			log.Warn("peer fell behind; resending the full state", "queued_limit", maxQueued)
		default:
			log.Info("sync stream closed", "err", err)
		}
		if time.Since(start) > 10*time.Second {
			backoff = 50 * time.Millisecond
		}
		select {
		case <-f.ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

// session runs one connection: handshake, full-state transfer, deltas.
func (f *feed) session() error {
	d := net.Dialer{Timeout: dialTimeout}
	conn, err := d.DialContext(f.ctx, "tcp", f.addr)
	if err != nil {
		return err
	}
	defer conn.Close()
	defer context.AfterFunc(f.ctx, func() { conn.Close() })()
	s, err := dialSession(conn, f.c.cfg.SecretKey, f.c.self, handshakeTimeout)
	if err != nil {
		return err
	}
	if s.peer != f.name {
		return fmt.Errorf("sync: %s answers as %q, want %q", f.addr, s.peer, f.name)
	}
	f.mu.Lock()
	f.q, f.qBytes, f.broken, f.conn = nil, 0, false, conn
	f.mu.Unlock()
	f.progress.connected(preciseNow())
	defer func() { f.progress.disconnected(preciseNow()) }()
	acks := make(chan struct{})
	go func() {
		defer close(acks)
		f.readAcks(s)
	}()
	defer func() {
		conn.Close()
		<-acks
	}()
	f.c.addFeed(f)
	defer f.c.removeFeed(f)
	if err := f.push(s); err != nil {
		return err
	}
	f.progress.streaming(preciseNow())
	for {
		select {
		case <-f.ctx.Done():
			return f.ctx.Err()
		case <-f.wake:
		}
		if err := f.drain(s); err != nil {
			return err
		}
		if err := s.flush(); err != nil {
			return err
		}
	}
}

// readAcks reads the member's acknowledgements until the stream closes.
func (f *feed) readAcks(s *session) {
	var m message
	for {
		b, err := s.readFrame()
		if err != nil {
			return
		}
		if decode(b, &m) != nil || m.kind != msgAck {
			f.c.stats.dropped.Add(1)
			continue
		}
		f.progress.ack(m.count, preciseNow())
	}
}

// push sends every table, stripe by stripe, and the delta frames queued
// meanwhile; memory stays at one stripe's copy and one chunk. It starts
// with the tables' sizes, so that an empty receiver sizes its maps once.
func (f *feed) push(s *session) error {
	start := time.Now()
	enc := newRecordEncoder(f.c.names)
	var items []item
	var buf []byte
	sent := 0
	emit := func() error {
		n := enc.len()
		sent += n
		buf = enc.finish(buf[:0])
		if err := s.writeFrame(buf); err != nil {
			return err
		}
		f.progress.wrote(s.sent, n, preciseNow(), false)
		return nil
	}
	tables := f.c.Tables()
	begin := message{kind: msgBegin}
	for _, t := range tables {
		begin.tables = append(begin.tables, tableRef{name: []byte(t.name), max: uint64(t.max.Load()), count: uint64(t.total.Load())})
	}
	if err := s.writeFrame(appendMessage(nil, &begin)); err != nil {
		return err
	}
	for _, t := range tables {
		for i := range t.shards {
			now := f.c.now()
			items = t.collect(i, now, items[:0])
			if err := encodeStripe(enc, t, items, now, emit); err != nil {
				return err
			}
			clear(items)
			if err := f.drain(s); err != nil {
				return err
			}
		}
	}
	if enc.len() > 0 {
		if err := emit(); err != nil {
			return err
		}
	}
	if err := s.writeFrame(appendMessage(buf[:0], &message{kind: msgDone, count: uint64(sent)})); err != nil {
		return err
	}
	if err := s.flush(); err != nil {
		return err
	}
	f.c.stats.fullSyncsSent.Add(1)
	f.c.log.Debug("full state sent", "peer", f.name, "records", sent, "took", time.Since(start))
	return nil
}

// drain writes the queued delta frames (buffered; the caller flushes).
func (f *feed) drain(s *session) error {
	f.mu.Lock()
	q, broken := f.q, f.broken
	f.q, f.qBytes = nil, 0
	f.mu.Unlock()
	if broken {
		return errFellBehind
	}
	for _, fr := range q {
		if err := s.writeFrame(fr.b); err != nil {
			return err
		}
		f.progress.wrote(s.sent, fr.records, fr.at, true)
	}
	return nil
}

// enqueue queues frames for the member without waiting. Past maxQueued the
// connection is closed: the member gets the full state again.
func (f *feed) enqueue(frames []frame) {
	f.mu.Lock()
	if f.broken {
		f.mu.Unlock()
		return
	}
	for _, fr := range frames {
		f.q = append(f.q, fr)
		f.qBytes += len(fr.b)
		f.progress.queue(fr.records)
	}
	if f.qBytes > maxQueued {
		f.broken, f.q, f.qBytes = true, nil, 0
		f.progress.dropQueue()
		conn := f.conn
		f.mu.Unlock()
		conn.Close()
		return
	}
	f.mu.Unlock()
	select {
	case f.wake <- struct{}{}:
	default:
	}
}

// reset drops f's connection; it reconnects and resends the full state.
func (f *feed) reset() {
	f.mu.Lock()
	f.broken, f.q, f.qBytes = true, nil, 0
	f.progress.dropQueue()
	conn := f.conn
	f.mu.Unlock()
	if conn != nil {
		conn.Close()
	}
}

func (c *Cluster) addFeed(f *feed) {
	c.mu.Lock()
	defer c.mu.Unlock()
	l := append(slices.Clone(*c.feeds.Load()), f)
	c.feeds.Store(&l)
}

func (c *Cluster) removeFeed(f *feed) {
	c.mu.Lock()
	defer c.mu.Unlock()
	l := slices.DeleteFunc(slices.Clone(*c.feeds.Load()), func(x *feed) bool { return x == f })
	c.feeds.Store(&l)
}

// resetFeeds resets every connected feed.
func (c *Cluster) resetFeeds() {
	for _, f := range *c.feeds.Load() {
		f.reset()
	}
}
