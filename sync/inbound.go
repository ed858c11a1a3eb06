package lbsync

import (
	"errors"
	"fmt"
	"io"
	"net"
	"time"
)

// acceptSync takes a sync stream from the transport and serves it on a
// goroutine the cluster owns.
func (c *Cluster) acceptSync(conn net.Conn) {
	c.mu.Lock()
	if c.closing {
		c.mu.Unlock()
		conn.Close()
		return
	}
	c.inbound[conn] = struct{}{}
	c.wg.Add(1)
	c.mu.Unlock()
	go func() {
		defer c.wg.Done()
		defer func() {
			c.mu.Lock()
			delete(c.inbound, conn)
			c.mu.Unlock()
			conn.Close()
		}()
		c.serveSync(conn)
	}()
}

// ackEvery bounds the frames a receiver applies before it acknowledges,
// when frames keep arriving.
const ackEvery = 16

// serveSync applies what a member streams: its full state, then its writes.
// A malformed message is dropped whole and counted; the stream goes on.
func (c *Cluster) serveSync(conn net.Conn) {
	log := c.log.With("remote", conn.RemoteAddr().String())
	s, err := acceptSession(conn, c.cfg.SecretKey, c.self, c.incarnation, handshakeTimeout)
	if err != nil {
		if errors.Is(err, errRejected) {
			c.stats.rejectedStreams.Add(1)
			log.Error("sync stream refused: the cluster key differs")
		} else {
			log.Info("sync handshake failed", "err", err)
		}
		return
	}
	log = log.With("peer", s.peer)
	start := time.Now()
	var m message
	var ack []byte
	unacked := 0
	for {
		// Acknowledge what was applied whenever everything that arrived is
		// (and at least every ackEvery frames): the sender's lag and pending
		// counts for this member (lbctl sessions).
		if unacked > 0 && (s.br.Buffered() == 0 || unacked >= ackEvery) {
			ack = appendMessage(ack[:0], &message{kind: msgAck, count: s.recv})
			if s.writeFrame(ack) == nil {
				s.flush() // a broken stream shows in the next read
			}
			unacked = 0
		}
		b, err := s.readFrame()
		if err != nil {
			switch {
			case errors.Is(err, errRejected):
				c.stats.rejectedStreams.Add(1)
				log.Error("sync frame failed authentication; stream closed")
			case !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed):
				log.Info("sync stream closed", "err", err)
			}
			return
		}
		unacked++
		if err := decode(b, &m); err != nil {
			c.stats.dropped.Add(1)
			log.Warn("dropped a sync message", "err", err)
			continue
		}
		switch m.kind {
		case msgRecords:
			if err := c.applyMessage(&m, c.now()); err != nil {
				c.stats.dropped.Add(1)
				log.Warn("dropped a sync message", "err", err)
			}
			if c.cfg.applied != nil {
				c.cfg.applied()
			}
		case msgBegin:
			for _, r := range m.tables {
				if t := c.tableFor(r.name, r.max); t != nil {
					t.reserve(r.count)
				}
			}
		case msgDone:
			c.stats.fullSyncsReceived.Add(1)
			log.Info("full state received", "records", m.count, "took", time.Since(start).Round(time.Millisecond))
		default:
			c.stats.dropped.Add(1)
			log.Warn("dropped a sync message", "kind", m.kind)
		}
	}
}

// applyMessage merges a decoded records message. It resolves the
// dictionaries first, so that a message it cannot take is not applied in
// part. now is the time the records' lifetimes count from.
func (c *Cluster) applyMessage(m *message, now int64) error {
	tables := make([]*Table, len(m.tables))
	for i, r := range m.tables {
		if tables[i] = c.tableFor(r.name, r.max); tables[i] == nil {
			return fmt.Errorf("sync: table %q refused: already %d tables", r.name, maxTables)
		}
	}
	nodes := make([]uint32, len(m.nodes))
	for i, n := range m.nodes {
		id, ok := c.names.id(n)
		if !ok {
			return fmt.Errorf("sync: node %q refused: already %d writers", n, maxNodes)
		}
		nodes[i] = id
	}
	var stale uint64
	for i := range m.records {
		r := &m.records[i]
		if !tables[r.table].apply(r, nodes[r.node], now) {
			stale++
		}
	}
	c.stats.recordsReceived.Add(uint64(len(m.records)))
	c.stats.staleRecords.Add(stale)
	return nil
}
