package lbsync

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"slices"
	"sync"
	"time"
)

// maxQueued bounds the bytes of deltas waiting for one member or sent and
// not yet acknowledged. A member that falls further behind has its stream
// reset and gets a full-state transfer.
const maxQueued = 64 << 20

// deadFeedGrace is how long a feed outlives its member being held dead (a
// partition, a restart of the member's network): it keeps queueing this
// node's writes, so that a member that comes back with its tables (the
// same incarnation) gets only what it missed.
const deadFeedGrace = 5 * time.Minute

var errFellBehind = errors.New("sync: peer fell behind")

// feed is the stream from this node to one other member. On a member's
// first connection it sends the whole of every table (the full-state
// transfer), then every local write as it happens. Writes made during the
// transfer are queued and sent between chunks; the receiver merges both by
// version, so their order does not matter.
//
// The member acknowledges what it applied. When a stream breaks and the
// member answers again as the same incarnation (the same process, holding
// what it was sent), the feed resumes: it resends the writes the member
// did not acknowledge and those queued meanwhile, and finishes a full-state
// transfer from the first stripe the member had not acknowledged. A
// restarted member, or one this node lost track of (queue overflow),
// gets the full state again.
type feed struct {
	c      *Cluster
	name   string // the member's name
	addr   string // its gossip address
	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{}
	wake   chan struct{} // capacity 1

	mu      sync.Mutex     // guards the fields below
	q       []frame        // delta frames not yet written
	unacked []sent         // delta frames written and not acknowledged
	qBytes  int            // bytes of q and unacked
	broken  bool           // the queue overflowed: the next stream starts afresh
	conn    net.Conn       // the current connection, closed on overflow
	inc     uint64         // the member's incarnation on the last stream; 0: none
	stripes map[string]int // per table, the stripes of the full state the member acknowledged
	pushed  bool           // the member acknowledged the end of the full state
	marks   []stripeMark   // stripes written, not yet acknowledged

	progress progress // what the member has applied: lbctl sessions' lag
}

// frame is one encoded delta message waiting for a member.
type frame struct {
	b       []byte
	records int
	at      int64 // unix ns when the writes were taken from the outbox
}

// sent is a delta frame written as frame seq of the current stream.
type sent struct {
	frame
	seq uint64
}

// stripeMark says that once frame seq is acknowledged, the member holds
// the stripes of table before next; with no table, the whole full state.
type stripeMark struct {
	seq   uint64
	table string
	next  int
}

func (c *Cluster) startFeed(name, addr string) *feed {
	f := &feed{c: c, name: name, addr: addr, done: make(chan struct{}), wake: make(chan struct{}, 1), stripes: map[string]int{}}
	f.ctx, f.cancel = context.WithCancel(context.Background())
	f.progress.init(preciseNow())
	c.mu.Lock()
	c.peers[name] = f
	c.mu.Unlock()
	c.addFeed(f)
	go f.run()
	return f
}

// stopFeed stops f and waits for it.
func (f *feed) stopFeed() {
	f.cancel()
	<-f.done
	f.c.removeFeed(f)
	f.c.mu.Lock()
	if f.c.peers[f.name] == f {
		delete(f.c.peers, f.name)
	}
	f.c.mu.Unlock()
}

// manageFeeds keeps one feed per member, following memberlist: one is
// started for every alive member, and stopped when the member leaves,
// changes address, or has been held dead for deadFeedGrace.
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
	tick := time.NewTicker(10 * time.Second)
	defer tick.Stop()
	for {
		select {
		case <-c.stop:
			return
		case <-c.memberCh:
		case <-tick.C:
		}
		now := time.Now()
		members := map[string]Member{}
		for _, m := range c.Members() {
			if !m.Self {
				members[m.Name] = m
			}
		}
		for name, f := range feeds {
			m, ok := members[name]
			keep := ok && m.Addr.String() == f.addr &&
				(m.State == MemberAlive || m.State == MemberDead && now.Sub(m.Since) < deadFeedGrace)
			if !keep {
				f.stopFeed()
				delete(feeds, name)
			}
		}
		for name, m := range members {
			if m.State == MemberAlive && feeds[name] == nil {
				feeds[name] = c.startFeed(name, m.Addr.String())
			}
		}
	}
}

func (f *feed) run() {
	defer close(f.done)
	log := f.c.log.With("peer", f.name, "addr", f.addr)
	backoff := 50 * time.Millisecond
	failures := 0
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
		case failures == 0:
			log.Info("sync stream closed", "err", err)
		default:
			log.Debug("sync stream closed", "err", err, "attempt", failures+1)
		}
		failures++
		if time.Since(start) > 10*time.Second {
			backoff, failures = 50*time.Millisecond, 0
		}
		select {
		case <-f.ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

// session runs one connection: handshake, the full-state transfer or what
// a resumed stream still owes, then deltas.
func (f *feed) session() error {
	d := net.Dialer{Timeout: dialTimeout}
	conn, err := d.DialContext(f.ctx, "tcp", f.addr)
	if err != nil {
		return err
	}
	defer conn.Close()
	defer context.AfterFunc(f.ctx, func() { conn.Close() })()
	s, err := dialSession(conn, f.c.cfg.SecretKey, f.c.self, f.c.incarnation, handshakeTimeout)
	if err != nil {
		return err
	}
	if s.peer != f.name {
		return fmt.Errorf("sync: %s answers as %q, want %q", f.addr, s.peer, f.name)
	}
	f.mu.Lock()
	resume := s.peerInc != 0 && s.peerInc == f.inc && !f.broken
	if !resume {
		// The state the transfer reads supersedes every queued write.
		f.q, f.unacked, f.qBytes, f.broken = nil, nil, 0, false
		f.stripes, f.pushed, f.inc = map[string]int{}, false, s.peerInc
		f.progress.dropQueue()
	}
	resend := f.unacked
	f.unacked, f.marks = nil, nil
	done, pushed := maps.Clone(f.stripes), f.pushed
	f.conn = conn
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
	if resume {
		f.c.stats.resumes.Add(1)
		f.c.log.Info("sync stream resumed", "peer", f.name, "resent_frames", len(resend), "stripes_acknowledged", sumStripes(done))
		for _, fr := range resend {
			if err := f.write(s, fr.frame, false); err != nil {
				return err
			}
		}
	}
	if !pushed {
		if err := f.push(s, done); err != nil {
			return err
		}
	}
	if err := f.drain(s); err != nil {
		return err
	}
	if err := s.flush(); err != nil {
		return err
	}
	f.progress.streaming(preciseNow())
	for {
		select {
		case <-f.ctx.Done():
			return f.ctx.Err()
		case <-acks:
			// The member closed the stream (or it broke): what was
			// written since its last acknowledgement is resent on the
			// next stream.
			return errors.New("sync: the stream was closed by the peer")
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

func sumStripes(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
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
		f.ack(m.count)
	}
}

// ack settles what the member acknowledged: frames up to seq.
func (f *feed) ack(seq uint64) {
	f.progress.ack(seq, preciseNow())
	f.mu.Lock()
	defer f.mu.Unlock()
	i := 0
	for i < len(f.unacked) && f.unacked[i].seq <= seq {
		f.qBytes -= len(f.unacked[i].b)
		i++
	}
	f.unacked = append(f.unacked[:0], f.unacked[i:]...)
	j := 0
	for j < len(f.marks) && f.marks[j].seq <= seq {
		m := f.marks[j]
		if m.table == "" {
			f.pushed = true
		} else {
			f.stripes[m.table] = max(f.stripes[m.table], m.next)
		}
		j++
	}
	f.marks = append(f.marks[:0], f.marks[j:]...)
}

// push sends the stripes of every table that done does not count as
// acknowledged (all of them on a new stream), and the delta frames queued
// meanwhile; memory stays at one stripe's copy and one chunk. It starts
// with the tables' sizes, so that an empty receiver sizes its maps once.
// It ends with msgDone, so that the member knows it has everything.
func (f *feed) push(s *session, done map[string]int) error {
	start := time.Now()
	tables := f.c.Tables()
	enc := newRecordEncoder(f.c.names)
	var items []item
	var buf []byte
	var pending []stripeMark // stripes whose records are all encoded, not all written
	records := 0
	settle := func() {
		f.mu.Lock()
		for _, m := range pending {
			m.seq = s.sent
			f.marks = append(f.marks, m)
		}
		f.mu.Unlock()
		pending = pending[:0]
	}
	emit := func() error {
		n := enc.len()
		records += n
		buf = enc.finish(buf[:0])
		if err := s.writeFrame(buf); err != nil {
			return err
		}
		f.progress.wrote(s.sent, n, preciseNow(), false)
		return nil
	}
	begin := message{kind: msgBegin}
	for _, t := range tables {
		begin.tables = append(begin.tables, tableRef{name: []byte(t.name), max: uint64(t.max.Load()), count: uint64(t.total.Load())})
	}
	if err := s.writeFrame(appendMessage(nil, &begin)); err != nil {
		return err
	}
	for _, t := range tables {
		for i := done[t.name]; i < len(t.shards); i++ {
			now := f.c.now()
			items = t.collect(i, now, items[:0])
			if err := encodeStripe(enc, t, items, now, func() error {
				if err := emit(); err != nil {
					return err
				}
				settle()
				return nil
			}); err != nil {
				return err
			}
			clear(items)
			pending = append(pending, stripeMark{table: t.name, next: i + 1})
			if enc.len() == 0 {
				settle() // the stripe's last records are written already
			}
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
	if err := s.writeFrame(appendMessage(buf[:0], &message{kind: msgDone, count: uint64(records)})); err != nil {
		return err
	}
	pending = append(pending, stripeMark{}) // the end
	settle()
	if err := s.flush(); err != nil {
		return err
	}
	f.c.stats.fullSyncsSent.Add(1)
	f.c.log.Debug("full state sent", "peer", f.name, "records", records, "took", time.Since(start))
	return nil
}

// drain writes the queued delta frames (buffered; the caller flushes).
func (f *feed) drain(s *session) error {
	f.mu.Lock()
	q, broken := f.q, f.broken
	f.q = nil
	f.mu.Unlock()
	if broken {
		return errFellBehind
	}
	for _, fr := range q {
		if err := f.write(s, fr, true); err != nil {
			return err
		}
	}
	return nil
}

// write writes one delta frame and keeps it until the member acknowledges
// it (its bytes stay counted in qBytes); fromQueue says it was queued, not
// resent from a broken stream.
func (f *feed) write(s *session, fr frame, fromQueue bool) error {
	if err := s.writeFrame(fr.b); err != nil {
		return err
	}
	f.mu.Lock()
	f.unacked = append(f.unacked, sent{frame: fr, seq: s.sent})
	f.mu.Unlock()
	f.progress.wrote(s.sent, fr.records, fr.at, fromQueue)
	return nil
}

// enqueue queues frames for the member without waiting, connected or not.
// Past maxQueued the connection is closed: the member gets the full state
// again.
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
		f.broken, f.q, f.unacked, f.qBytes = true, nil, nil, 0
		f.progress.dropQueue()
		conn := f.conn
		f.mu.Unlock()
		if conn != nil {
			conn.Close()
		}
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
	f.broken, f.q, f.unacked, f.qBytes = true, nil, nil, 0
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

// resetFeeds resets every feed.
func (c *Cluster) resetFeeds() {
	for _, f := range *c.feeds.Load() {
		f.reset()
	}
}
