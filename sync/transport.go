package lbsync

import (
	"net"
	"sync"
	"time"

	"github.com/hashicorp/memberlist"
)

// peekTimeout bounds the wait for the first byte of a new TCP stream.
const peekTimeout = 5 * time.Second

// demuxTransport is memberlist's NetTransport with the TCP streams split by
// their first byte: sync streams (syncMagic) go to handle, all others to
// memberlist. Gossip, failure detection and table replication thus share
// one port, cluster.bind (UDP for gossip, TCP for both).
type demuxTransport struct {
	*memberlist.NetTransport
	handle  func(net.Conn) // takes ownership of a sync stream
	streams chan net.Conn  // memberlist's streams
	done    chan struct{}
	wg      sync.WaitGroup // the demux loop and its peeks

	mu      sync.Mutex // guards peeking
	peeking map[net.Conn]struct{}
}

func newDemuxTransport(nt *memberlist.NetTransport, handle func(net.Conn)) *demuxTransport {
	t := &demuxTransport{NetTransport: nt, handle: handle, streams: make(chan net.Conn),
		done: make(chan struct{}), peeking: map[net.Conn]struct{}{}}
	t.wg.Add(1)
	go t.run()
	return t
}

// StreamCh returns the streams that are memberlist's.
func (t *demuxTransport) StreamCh() <-chan net.Conn { return t.streams }

func (t *demuxTransport) run() {
	defer t.wg.Done()
	for {
		select {
		case <-t.done:
			return
		case conn := <-t.NetTransport.StreamCh():
			t.mu.Lock()
			t.peeking[conn] = struct{}{}
			t.wg.Add(1)
			t.mu.Unlock()
			go t.route(conn)
		}
	}
}

// route reads the first byte of conn and hands it on, that byte included.
func (t *demuxTransport) route(conn net.Conn) {
	defer t.wg.Done()
	var b [1]byte
	err := conn.SetReadDeadline(time.Now().Add(peekTimeout))
	if err == nil {
		_, err = conn.Read(b[:])
	}
	if err == nil {
		err = conn.SetReadDeadline(time.Time{})
	}
	t.mu.Lock()
	delete(t.peeking, conn)
	t.mu.Unlock()
	if err != nil {
		conn.Close()
		return
	}
	pc := &prefixConn{Conn: conn, prefix: b[:]}
	if b[0] == syncMagic {
		t.handle(pc)
		return
	}
	select {
	case t.streams <- pc:
	case <-t.done:
		conn.Close()
	}
}

// Shutdown stops the listeners, then the demux.
func (t *demuxTransport) Shutdown() error {
	// NetTransport.Shutdown waits for its accept loop, which may be
	// handing a stream to run, so run must still be reading.
	err := t.NetTransport.Shutdown()
	close(t.done)
	t.mu.Lock()
	for c := range t.peeking {
		c.Close()
	}
	t.mu.Unlock()
	t.wg.Wait()
	return err
}

// prefixConn is a net.Conn whose first bytes were already read.
type prefixConn struct {
	net.Conn
	prefix []byte
}

func (c *prefixConn) Read(b []byte) (int, error) {
	if len(c.prefix) > 0 {
		n := copy(b, c.prefix)
		c.prefix = c.prefix[n:]
		return n, nil
	}
	return c.Conn.Read(b)
}
