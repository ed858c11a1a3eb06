package httpproxy

import (
	"context"
	"errors"
	"net"
	"os"
	"sync"
	"time"

	"lbd/proxy"
)

// Backend connection pool limits. A backend's keep-alive timeout is
// often short (Apache 5 s, Node.js 5 s): an idle connection is closed
// before the backend would close it, so a request rarely meets a
// connection the backend is closing.
const (
	maxIdlePerBackend  = 256
	backendIdleTimeout = 4 * time.Second
	reapInterval       = time.Second
)

// bconn is a keep-alive connection to a backend.
type bconn struct {
	c      *net.TCPConn
	b      *proxy.Backend
	pool   *connPool
	raw    rawIO
	in     inbuf // the response as it arrives; borrowed per request
	idleAt time.Time
	reused bool // served a request before this one
	once   sync.Once
}

// Close closes the connection; the backend stops tracking it. It is safe
// to call more than once and from another goroutine (drain, shutdown).
func (bc *bconn) Close() error {
	bc.once.Do(func() {
		bc.c.Close()
		bc.b.Untrack(bc)
	})
	return nil
}

// discard closes the connection and returns its buffer.
func (bc *bconn) discard() {
	bc.Close()
	bc.in.release()
}

// connPool keeps idle keep-alive connections per backend, last in first
// out, so that a busy backend reuses few warm connections.
type connPool struct {
	mu     sync.Mutex // guards idle and closed
	idle   map[*proxy.Backend][]*bconn
	closed bool

	stop   chan struct{}
	wg     sync.WaitGroup
	onTick func() // called on each reaper tick
}

// newConnPool starts the pool's reaper, which also calls onTick (if not
// nil) once a tick.
func newConnPool(onTick func()) *connPool {
	p := &connPool{idle: make(map[*proxy.Backend][]*bconn), stop: make(chan struct{}), onTick: onTick}
	p.wg.Go(p.reap)
	return p
}

// get returns an idle connection to b, or nil.
func (p *connPool) get(b *proxy.Backend) *bconn {
	now := time.Now()
	p.mu.Lock()
	for {
		list := p.idle[b]
		if len(list) == 0 {
			p.mu.Unlock()
			return nil
		}
		bc := list[len(list)-1]
		list[len(list)-1] = nil
		p.idle[b] = list[:len(list)-1]
		if now.Sub(bc.idleAt) < backendIdleTimeout {
			p.mu.Unlock()
			bc.reused = true
			return bc
		}
		p.mu.Unlock()
		bc.Close()
		p.mu.Lock()
	}
}

// put returns a connection that finished a response cleanly.
func (p *connPool) put(bc *bconn) {
	bc.in.release()
	bc.idleAt = time.Now()
	p.mu.Lock()
	if p.closed || len(p.idle[bc.b]) >= maxIdlePerBackend {
		p.mu.Unlock()
		bc.Close()
		return
	}
	p.idle[bc.b] = append(p.idle[bc.b], bc)
	p.mu.Unlock()
}

// dial opens a new connection to b within timeout.
func (p *connPool) dial(ctx context.Context, b *proxy.Backend, timeout time.Duration) (*bconn, error) {
	d := net.Dialer{Timeout: timeout, KeepAlive: 30 * time.Second}
	c, err := d.DialContext(ctx, "tcp", b.Address())
	if err != nil {
		return nil, err
	}
	bc := &bconn{c: c.(*net.TCPConn), b: b, pool: p}
	if err := bc.raw.init(bc.c); err != nil {
		c.Close()
		return nil, err
	}
	b.Track(bc)
	return bc, nil
}

// reap closes connections idle for longer than backendIdleTimeout and
// those of backends that left rotation.
func (p *connPool) reap() {
	t := time.NewTicker(reapInterval)
	defer t.Stop()
	for {
		select {
		case <-p.stop:
			return
		case <-t.C:
		}
		now := time.Now()
		var old []*bconn
		p.mu.Lock()
		for b, list := range p.idle {
			keep := list[:0]
			for _, bc := range list {
				if now.Sub(bc.idleAt) >= backendIdleTimeout || !b.Usable() {
					old = append(old, bc)
				} else {
					keep = append(keep, bc)
				}
			}
			clear(list[len(keep):])
			if len(keep) == 0 {
				delete(p.idle, b)
			} else {
				p.idle[b] = keep
			}
		}
		p.mu.Unlock()
		for _, bc := range old {
			bc.Close()
		}
		if p.onTick != nil {
			p.onTick()
		}
	}
}

// close stops the reaper and closes every idle connection; connections in
// use are closed by their requests.
func (p *connPool) close() {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	p.closed = true
	idle := p.idle
	p.idle = nil
	p.mu.Unlock()
	close(p.stop)
	p.wg.Wait()
	for _, list := range idle {
		for _, bc := range list {
			bc.Close()
		}
	}
}

// isTimeout reports a deadline error.
func isTimeout(err error) bool {
	return errors.Is(err, os.ErrDeadlineExceeded)
}
