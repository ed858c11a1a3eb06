package lbsync

import (
	"sort"
	"sync"
	"time"
)

// Peer states, as lbctl sessions shows them.
const (
	PeerConnecting = "connecting" // no stream to the member: dialing, or waiting to retry
	PeerFullSync   = "full-sync"  // sending the whole of every table
	PeerStreaming  = "streaming"  // sending each local write as it happens
)

// Peer is this node's replication stream to one member, HAProxy's
// "show peers" for lbd: how far behind the member is.
type Peer struct {
	Name  string
	Addr  string
	State string    // PeerConnecting, PeerFullSync or PeerStreaming
	Since time.Time // in this state since
	// RecordsSent counts the records written on the current stream, the
	// full-state transfer included.
	RecordsSent uint64
	// Pending counts the records queued for the member or sent and not yet
	// applied by it.
	Pending uint64
	// Lag is how long the member takes to apply this node's writes: the
	// time from a write leaving the outbox to the member's acknowledgement
	// of it, measured on the last acknowledgement, or the age of the oldest
	// unacknowledged write when that is longer.
	Lag time.Duration
	// LastAck is when the member last acknowledged; zero before the first.
	LastAck time.Time
}

// Peers returns the replication streams to the other members, by name.
func (c *Cluster) Peers() []Peer {
	c.mu.Lock()
	feeds := make([]*feed, 0, len(c.peers))
	for _, f := range c.peers {
		feeds = append(feeds, f)
	}
	c.mu.Unlock()
	now := preciseNow()
	out := make([]Peer, 0, len(feeds))
	for _, f := range feeds {
		p := f.progress.peer(now)
		p.Name, p.Addr = f.name, f.addr
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// preciseNow is the wall clock in unix ns. Lag is measured with it, not
// with the tables' millisecond clock: on a LAN it is well under 1 ms.
func preciseNow() int64 { return time.Now().UnixNano() }

// maxMarks bounds the unacknowledged write marks a stream remembers; past
// it the oldest are merged, which only coarsens the lag measured.
const maxMarks = 4096

// mark is a point in a stream: after frame seq, cum records were written;
// the oldest of them left the outbox at at.
type mark struct {
	seq, cum uint64
	at       int64
}

// progress follows one feed's stream: what was written, what the member
// acknowledged. The receiver acknowledges the frames it has applied each
// time it has read all that arrived (msgAck), so the marks of frames up to
// the acknowledged one can be settled.
type progress struct {
	mu      sync.Mutex // guards the fields below
	state   string
	since   int64
	queued  uint64 // records queued, not yet written
	written uint64 // records written on this stream
	acked   uint64 // of those, acknowledged
	marks   []mark // unacknowledged writes, oldest first
	lag     int64  // last measured, ns
	lastAck int64
}

func (p *progress) init(now int64) {
	p.mu.Lock()
	p.state, p.since = PeerConnecting, now
	p.mu.Unlock()
}

// connected starts a stream.
func (p *progress) connected(now int64) { p.restart(PeerFullSync, now) }

func (p *progress) streaming(now int64) {
	p.mu.Lock()
	p.state, p.since = PeerStreaming, now
	p.mu.Unlock()
}

func (p *progress) disconnected(now int64) { p.restart(PeerConnecting, now) }

// restart enters state with a new stream's counts. The feed's queue
// outlives streams (a resumed stream sends it), so its count stays; the
// feed drops it with dropQueue when it starts afresh.
func (p *progress) restart(state string, now int64) {
	p.mu.Lock()
	p.state, p.since = state, now
	p.written, p.acked, p.marks = 0, 0, p.marks[:0]
	p.mu.Unlock()
}

// queue counts n records waiting in the feed's queue.
func (p *progress) queue(n int) {
	p.mu.Lock()
	p.queued += uint64(n)
	p.mu.Unlock()
}

// dropQueue forgets the queued records: the stream is being reset.
func (p *progress) dropQueue() {
	p.mu.Lock()
	p.queued = 0
	p.mu.Unlock()
}

// wrote records that frame seq carried n records, the oldest of which left
// the outbox at at; fromQueue says they were counted by queue.
func (p *progress) wrote(seq uint64, n int, at int64, fromQueue bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if fromQueue {
		p.queued -= min(p.queued, uint64(n))
	}
	p.written += uint64(n)
	if len(p.marks) == maxMarks {
		// Merge the two oldest: the older time, the later point.
		p.marks[1].at = p.marks[0].at
		p.marks = append(p.marks[:0], p.marks[1:]...)
	}
	p.marks = append(p.marks, mark{seq: seq, cum: p.written, at: at})
}

// ack settles the marks of the frames up to seq.
func (p *progress) ack(seq uint64, now int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.lastAck = now
	i := 0
	for i < len(p.marks) && p.marks[i].seq <= seq {
		i++
	}
	if i == 0 {
		return
	}
	p.acked = p.marks[i-1].cum
	p.lag = max(now-p.marks[0].at, 0)
	p.marks = append(p.marks[:0], p.marks[i:]...)
}

func (p *progress) peer(now int64) Peer {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := Peer{State: p.state, Since: time.Unix(0, p.since), RecordsSent: p.written,
		Pending: p.queued + p.written - p.acked, Lag: time.Duration(p.lag)}
	if len(p.marks) > 0 {
		out.Lag = max(out.Lag, time.Duration(now-p.marks[0].at))
	}
	if p.lastAck != 0 {
		out.LastAck = time.Unix(0, p.lastAck)
	}
	return out
}
