package httpproxy

import (
	"net"
	"net/netip"
	"sync"
	"time"

	"lbd/proxy"
)

// maxPrivIdle bounds the idle backend connections one client connection
// keeps: one for HTTP/1.1, a few for the concurrent streams of HTTP/2.
const maxPrivIdle = 8

// privPool holds the backend connections of one client connection when
// the frontend sends a PROXY header (proxy_protocol = "v1" or "v2"), as
// HAProxy's send-proxy does with mode http: the header speaks for one
// client, so a connection that carried it serves that client's requests
// only and is never shared through the frontend's pool. It closes with
// the client connection.
type privPool struct {
	version  string
	src, dst netip.AddrPort

	mu     sync.Mutex // guards the fields below
	hdr    []byte
	idle   []*bconn
	h2c    map[*proxy.Backend]*h2cBackend
	closed bool
}

// newPrivPool is the pool of the client connection c: src is the client,
// dst the address it connected to.
func newPrivPool(version string, c net.Conn) *privPool {
	return &privPool{version: version, src: addrPortOf(c.RemoteAddr()), dst: addrPortOf(c.LocalAddr())}
}

func addrPortOf(a net.Addr) netip.AddrPort {
	if t, ok := a.(*net.TCPAddr); ok {
		return t.AddrPort()
	}
	return netip.AddrPort{}
}

// header returns the PROXY header the pool's connections start with.
func (p *privPool) header() []byte {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.hdr == nil {
		p.hdr, _ = proxy.AppendProxyHeader(nil, p.version, p.src, p.dst) // config allows v1 and v2 only
	}
	return p.hdr
}

// get returns an idle connection to b, or nil.
func (p *privPool) get(b *proxy.Backend) *bconn {
	now := time.Now()
	p.mu.Lock()
	defer p.mu.Unlock()
	for i := len(p.idle) - 1; i >= 0; i-- {
		bc := p.idle[i]
		if bc.b != b {
			continue
		}
		p.idle = append(p.idle[:i], p.idle[i+1:]...)
		if now.Sub(bc.idleAt) >= backendIdleTimeout {
			bc.Close()
			continue
		}
		bc.reused = true
		return bc
	}
	return nil
}

// put keeps a connection that finished a response cleanly.
func (p *privPool) put(bc *bconn) {
	bc.in.release()
	bc.idleAt = time.Now()
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		bc.Close()
		return
	}
	var old *bconn
	if len(p.idle) >= maxPrivIdle {
		old = p.idle[0]
		p.idle = append(p.idle[:0], p.idle[1:]...)
	}
	p.idle = append(p.idle, bc)
	p.mu.Unlock()
	if old != nil {
		old.Close()
	}
}

// h2cBackend returns the client connection's own h2c transport to b.
func (p *privPool) h2cBackend(b *proxy.Backend, timeout time.Duration) *h2cBackend {
	hdr := p.header()
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.h2c == nil {
		p.h2c = make(map[*proxy.Backend]*h2cBackend)
	}
	h := p.h2c[b]
	if h == nil {
		h = newH2CBackend(b, timeout, hdr)
		p.h2c[b] = h
	}
	return h
}

// close closes the pool's connections; the client connection has ended,
// and so have its requests.
func (p *privPool) close() {
	p.mu.Lock()
	p.closed = true
	idle, h2c := p.idle, p.h2c
	p.idle, p.h2c = nil, nil
	p.mu.Unlock()
	for _, bc := range idle {
		bc.Close()
	}
	for _, h := range h2c {
		h.tr.CloseIdleConnections()
	}
}
