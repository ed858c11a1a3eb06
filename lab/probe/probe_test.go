package probe

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

var t0 = time.Date(2026, 11, 26, 0, 0, 0, 0, time.UTC)

func res(ms int, who string) Result {
	r := Result{Sent: t0.Add(time.Duration(ms) * time.Millisecond), Who: who}
	if who == "" {
		r.Err = "timeout"
	}
	return r
}

func TestWindows(t *testing.T) {
	rs := []Result{
		res(0, "lb1"), res(10, "lb1"), res(20, ""), res(30, ""), res(40, "lb2"),
		res(50, "lb1"), // in flight from before the switch: a new window (back)
		res(60, "lb1"), res(70, "lb1"),
	}
	ws := Windows(rs, t0)
	if len(ws) != 2 {
		t.Fatalf("windows = %+v, want 2", ws)
	}
	if w := ws[0]; w.From != "lb1" || w.To != "lb2" || w.Duration() != 30*time.Millisecond || w.Failed != 2 {
		t.Errorf("first window = %+v (%v)", w, w.Duration())
	}
	if n := Failed(rs, t0, t0.Add(time.Second)); n != 2 {
		t.Errorf("Failed = %d, want 2", n)
	}
	var b bytes.Buffer
	Timeline(&b, rs, t0, t0.Add(80*time.Millisecond), 40*time.Millisecond, map[time.Time]string{t0.Add(15 * time.Millisecond): "demote"})
	want := "  +     0ms  lb1×2 FAILED×2                <- demote\n  +    40ms  lb1×3 lb2×1\n  +    80ms\n"
	if b.String() != want {
		t.Errorf("timeline:\n%s\nwant:\n%s", b.String(), want)
	}
}

func TestRunAgainstServer(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var served atomic.Int64
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			served.Add(1)
			fmt.Fprintln(c, "lb1 via 127.0.0.1")
			c.Close()
		}
	}()
	ctx, cancel := context.WithCancel(context.Background())
	var out bytes.Buffer
	done := make(chan error)
	go func() {
		done <- Run(ctx, Config{Target: ln.Addr().String(), Every: 10 * time.Millisecond, Timeout: 200 * time.Millisecond}, &out)
	}()
	for served.Load() < 5 {
		time.Sleep(time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	rs, err := Read(strings.NewReader(out.String()))
	if err != nil || len(rs) < 5 {
		t.Fatalf("results %d, %v", len(rs), err)
	}
	for _, r := range rs {
		if r.Who != "lb1" {
			t.Errorf("probe result %+v", r)
		}
	}
}

func TestOnceHTTP(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			bufio.NewReader(c).ReadString('\n')
			fmt.Fprint(c, "HTTP/1.1 200 OK\r\nContent-Length: 8\r\nConnection: close\r\n\r\nlb2 be1\n")
			c.Close()
		}
	}()
	r := once(Config{Target: ln.Addr().String(), Timeout: 5 * time.Second, HTTP: true})
	if r.Who != "lb2" {
		t.Errorf("HTTP probe = %+v, want lb2", r)
	}
}
