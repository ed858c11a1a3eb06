package httpproxy

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"lbd/config"
	"lbd/proxy"
)

// rawBackend is a minimal HTTP/1.1 responder with a prebuilt response, as
// MEASURING.md's benchmark backends: cheap enough that the proxy is what
// the benchmark measures. It allocates nothing per request.
type rawBackend struct {
	ln   net.Listener
	resp []byte
	wg   sync.WaitGroup
}

func startRawBackend(tb testing.TB, body int) *rawBackend {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	payload := bytes.Repeat([]byte("x"), body)
	rb := &rawBackend{ln: ln, resp: append([]byte(fmt.Sprintf("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n\r\n", body)), payload...)}
	rb.wg.Go(func() {
		var conns sync.WaitGroup
		defer conns.Wait()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns.Go(func() { rb.serve(c) })
		}
	})
	tb.Cleanup(func() { ln.Close(); rb.wg.Wait() })
	return rb
}

func (rb *rawBackend) serve(c net.Conn) {
	defer c.Close()
	go func() { <-doneCh(rb); c.Close() }()
	buf := make([]byte, 16<<10)
	n := 0
	for {
		m, err := c.Read(buf[n:])
		if err != nil {
			return
		}
		n += m
		for {
			i := bytes.Index(buf[:n], []byte("\r\n\r\n"))
			if i < 0 {
				break
			}
			copy(buf, buf[i+4:n])
			n -= i + 4
			if _, err := c.Write(rb.resp); err != nil {
				return
			}
		}
	}
}

var rawDone sync.Map

func doneCh(rb *rawBackend) chan struct{} {
	ch, _ := rawDone.LoadOrStore(rb, make(chan struct{}))
	return ch.(chan struct{})
}

// rawClient sends keep-alive GETs on one connection and reads responses
// without allocating.
type rawClient struct {
	c   net.Conn
	req []byte
	buf []byte
}

func newRawClient(tb testing.TB, addr string) *rawClient {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		tb.Fatal(err)
	}
	return &rawClient{c: c, req: []byte("GET /bench HTTP/1.1\r\nHost: bench.example.com\r\nUser-Agent: wrk\r\n\r\n"), buf: make([]byte, 80<<10)}
}

var clHeader = []byte("\r\nContent-Length: ")

// do sends one request and reads its response; it returns the status.
func (rc *rawClient) do() (int, error) {
	if _, err := rc.c.Write(rc.req); err != nil {
		return 0, err
	}
	n := 0
	for {
		m, err := rc.c.Read(rc.buf[n:])
		n += m
		if err != nil {
			return 0, err
		}
		end := bytes.Index(rc.buf[:n], []byte("\r\n\r\n"))
		if end < 0 {
			continue
		}
		head := rc.buf[:end+2]
		i := bytes.Index(head, clHeader)
		if i < 0 {
			return 0, io.ErrUnexpectedEOF
		}
		j := bytes.IndexByte(head[i+len(clHeader):], '\r')
		cl, _ := strconv.Atoi(string(head[i+len(clHeader) : i+len(clHeader)+j]))
		for n < end+4+cl {
			m, err := rc.c.Read(rc.buf[n:])
			n += m
			if err != nil {
				return 0, err
			}
		}
		st, _ := strconv.Atoi(string(rc.buf[9:12]))
		return st, nil
	}
}

func benchFrontend(b *testing.B, backends ...string) *Frontend {
	return benchFrontendLog(b, "", backends...)
}

// benchFrontendLog is benchFrontend with access_log = accessLog.
func benchFrontendLog(b *testing.B, accessLog string, backends ...string) *Frontend {
	pc := config.Pool{Name: "app", Algorithm: "round_robin", Retries: 1,
		ConnectTimeout: config.Duration(time.Second), ReadTimeout: config.Duration(30 * time.Second)}
	for _, a := range backends {
		pc.Backends = append(pc.Backends, config.Backend{Address: a, Weight: 1})
	}
	p, err := proxy.NewPool(pc, nil, discard)
	if err != nil {
		b.Fatal(err)
	}
	fc := config.Frontend{Name: "bench", Bind: "127.0.0.1:0", Mode: "http", DefaultPool: "app",
		RequestIDHeader: "X-Request-ID", IdleTimeout: config.Duration(60 * time.Second),
		HeaderTimeout: config.Duration(10 * time.Second), TLSMinVersion: "1.2", AccessLog: accessLog}
	f, err := Listen(fc, proxy.Pools{"app": p}, nil, discard)
	if err != nil {
		b.Fatal(err)
	}
	f.Start()
	b.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		f.Close(ctx)
	})
	return f
}

// BenchmarkProxyGET is a keep-alive GET through the proxy to a minimal
// backend over loopback, 13-byte body, as MEASURING.md's first row. The
// allocations counted are the proxy's: client and backend allocate none
// per request.
func BenchmarkProxyGET(b *testing.B) {
	for _, size := range []int{13, 1 << 10, 64 << 10} {
		b.Run(fmt.Sprintf("body=%d", size), func(b *testing.B) {
			rb1, rb2 := startRawBackend(b, size), startRawBackend(b, size)
			f := benchFrontend(b, rb1.ln.Addr().String(), rb2.ln.Addr().String())
			b.Cleanup(func() { close(doneCh(rb1)); close(doneCh(rb2)) })
			b.ReportAllocs()
			b.SetBytes(int64(size))
			b.SetParallelism(32) // 64 connections on 2 CPUs, as wrk -c64
			runRawClients(b, f.Addr().String())
		})
	}
}

// BenchmarkProxyGETAccessLog is BenchmarkProxyGET with the access log
// written to a file: the request's share is copying its line into the
// ring, the writer's is encoding and writing in batches.
func BenchmarkProxyGETAccessLog(b *testing.B) {
	for _, size := range []int{13, 64 << 10} {
		b.Run(fmt.Sprintf("body=%d", size), func(b *testing.B) {
			rb1, rb2 := startRawBackend(b, size), startRawBackend(b, size)
			f := benchFrontendLog(b, filepath.Join(b.TempDir(), "access.log"), rb1.ln.Addr().String(), rb2.ln.Addr().String())
			b.Cleanup(func() { close(doneCh(rb1)); close(doneCh(rb2)) })
			b.ReportAllocs()
			b.SetBytes(int64(size))
			b.SetParallelism(32)
			runRawClients(b, f.Addr().String())
			b.StopTimer()
			if s := f.AccessLogStats(); s.Dropped > 0 {
				b.ReportMetric(float64(s.Dropped)/float64(b.N), "dropped/op")
			}
		})
	}
}

// BenchmarkDirectGET is the ceiling: the same client straight to the
// backend.
func BenchmarkDirectGET(b *testing.B) {
	rb := startRawBackend(b, 13)
	b.Cleanup(func() { close(doneCh(rb)) })
	b.ReportAllocs()
	b.SetParallelism(32)
	runRawClients(b, rb.ln.Addr().String())
}

// runRawClients sends b.N keep-alive GETs to addr from parallel raw
// clients, one connection each; any answer but 200 fails b.
func runRawClients(b *testing.B, addr string) {
	b.RunParallel(func(pb *testing.PB) {
		rc := newRawClient(b, addr)
		defer rc.c.Close()
		for pb.Next() {
			if st, err := rc.do(); err != nil || st != 200 {
				b.Errorf("status %d, %v", st, err)
				return
			}
		}
	})
}

var benchHead = []byte("GET /api/v1/items?id=42 HTTP/1.1\r\n" +
	"Host: api.example.com\r\n" +
	"User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko)\r\n" +
	"Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8\r\n" +
	"Accept-Language: en-US,en;q=0.5\r\n" +
	"Accept-Encoding: gzip, deflate, br\r\n" +
	"Cookie: session=abcdef0123456789; LB=xyz\r\n" +
	"Connection: keep-alive\r\n" +
	"X-Forwarded-For: 198.18.0.1\r\n\r\n")

// BenchmarkParseRequestHead parses a typical browser request head.
func BenchmarkParseRequestHead(b *testing.B) {
	var h reqHead
	h.fields = make([]field, 0, maxFields)
	b.ReportAllocs()
	b.SetBytes(int64(len(benchHead)))
	for b.Loop() {
		var sc headScanner
		n, err := sc.scan(benchHead)
		if err != nil || n != len(benchHead) {
			b.Fatal(n, err)
		}
		if err := parseRequestHead(&h, benchHead[:n]); err != nil {
			b.Fatal(err)
		}
	}
}
