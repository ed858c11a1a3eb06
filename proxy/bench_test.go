package proxy

import (
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"lbd/config"
)

// startEcho runs a loopback server that echoes every connection until EOF.
func startEcho(b testing.TB) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				defer c.Close()
				io.Copy(c, c)
			})
		}
	})
	b.Cleanup(func() { ln.Close(); wg.Wait() })
	return ln.Addr().String()
}

// BenchmarkTCPConnRate is the proxy's side of make bench's connection
// rate: connect through the frontend, 64 bytes echoed by the backend,
// close; 8 clients at once. Profile the proxy's share with
//
//	go test -run '^$' -bench TCPConnRate -cpuprofile cpu.out ./proxy/
func BenchmarkTCPConnRate(b *testing.B) {
	be := startEcho(b)
	f := startFrontend(b, config.Frontend{IdleTimeout: dur(time.Minute)}, poolConfig("round_robin", be))
	addr := f.Addr().String()
	msg := make([]byte, 64)
	b.SetParallelism(4) // 8 clients on 2 cores
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		buf := make([]byte, 64)
		for pb.Next() {
			c, err := net.Dial("tcp", addr)
			if err != nil {
				b.Error(err)
				return
			}
			if _, err := c.Write(msg); err != nil {
				b.Error(err)
			}
			if _, err := io.ReadFull(c, buf); err != nil {
				b.Error(err)
			}
			c.Close()
		}
	})
}
