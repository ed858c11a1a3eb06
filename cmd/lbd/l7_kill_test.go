package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"lbd/lab"
)

// l7Load sends keep-alive GETs from the client host, one connection per
// worker, with a plain HTTP/1.1 client: net/http's Transport would resend
// a GET that failed on a reused connection itself and so hide a request
// lbd failed.
type l7Load struct {
	h    *lab.Host
	addr string
	stop chan struct{}
	wg   sync.WaitGroup

	mu      sync.Mutex     // guards the fields below
	answers map[string]int // by body
	failed  int
	errs    []string // the first failures
}

func startL7Load(h *lab.Host, addr string, conns int) *l7Load {
	ld := &l7Load{h: h, addr: addr, stop: make(chan struct{}), answers: map[string]int{}}
	for range conns {
		ld.wg.Go(ld.worker)
	}
	return ld
}

// finish stops the workers and waits for them; it may be called again.
func (ld *l7Load) finish() {
	select {
	case <-ld.stop:
	default:
		close(ld.stop)
	}
	ld.wg.Wait()
}

func (ld *l7Load) worker() {
	var c net.Conn
	var br *bufio.Reader
	defer func() {
		if c != nil {
			c.Close()
		}
	}()
	req := "GET / HTTP/1.1\r\nHost: " + ld.addr + "\r\nUser-Agent: lbd-lab\r\n\r\n"
	for {
		select {
		case <-ld.stop:
			return
		default:
		}
		if c == nil {
			var err error
			if c, err = ld.h.Dial("tcp", ld.addr); err != nil {
				ld.fail("dial: " + err.Error())
				c = nil
				continue
			}
			br = bufio.NewReader(c)
		}
		c.SetDeadline(time.Now().Add(10 * time.Second))
		body, keep, err := l7Get(c, br, req)
		if err != nil {
			ld.fail(err.Error())
			c.Close()
			c = nil
			continue
		}
		ld.mu.Lock()
		ld.answers[body]++
		ld.mu.Unlock()
		if !keep {
			c.Close()
			c = nil
		}
	}
}

// l7Get sends req and reads the answer; anything but 200 is an error.
func l7Get(c net.Conn, br *bufio.Reader, req string) (body string, keep bool, err error) {
	if _, err := io.WriteString(c, req); err != nil {
		return "", false, fmt.Errorf("send: %w", err)
	}
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		return "", false, fmt.Errorf("read response: %w", err)
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return "", false, fmt.Errorf("read body: %w", err)
	}
	if resp.StatusCode != 200 {
		return "", false, fmt.Errorf("status %d, request id %q: %q", resp.StatusCode, resp.Header.Get("X-Request-ID"), b)
	}
	return strings.TrimSpace(string(b)), !resp.Close, nil
}

func (ld *l7Load) fail(msg string) {
	ld.mu.Lock()
	defer ld.mu.Unlock()
	ld.failed++
	if len(ld.errs) < 5 {
		ld.errs = append(ld.errs, msg)
	}
}

// counts returns the answers by body and the failures so far.
func (ld *l7Load) counts() (answers map[string]int, total, failed int) {
	ld.mu.Lock()
	defer ld.mu.Unlock()
	answers = map[string]int{}
	for k, v := range ld.answers {
		answers[k] = v
		total += v
	}
	return answers, total + ld.failed, ld.failed
}

// backendKilled: keep-alive load over 8 connections while be2's backend
// process is SIGKILLed: no request fails (lbd retries the GETs be2 drops
// or refuses on be1), health marks be2 down, and from then on lbd sends
// be2 nothing: a server put in its place that fails health checks gets
// the checks and no request.
func (x *l7Lab) backendKilled(t *testing.T) {
	ld := startL7Load(x.client, "198.18.0.11:8081", 8)
	defer ld.finish()
	lab.Eventually(t, 30*time.Second, func() (bool, string) {
		a, _, failed := ld.counts()
		return a["be1"] >= 100 && a["be2"] >= 100 || failed > 0, fmt.Sprintf("answers %v", a)
	})
	moreAnswers := func(n int) {
		t.Helper()
		_, mark, _ := ld.counts()
		lab.Eventually(t, 30*time.Second, func() (bool, string) {
			a, total, failed := ld.counts()
			return total >= mark+n || failed > 0, fmt.Sprintf("answers %v, %d of %d more requests", a, total-mark, n)
		})
	}

	_, atKill, _ := ld.counts()
	killed := time.Now()
	if err := x.killable[1].Kill(); err != nil {
		t.Fatal(err)
	}
	if err := x.killable[1].Wait(10 * time.Second); err == nil || !strings.Contains(err.Error(), "killed") {
		t.Fatalf("be2's backend after SIGKILL: %v", err)
	}
	lab.Eventually(t, 15*time.Second, func() (bool, string) {
		b, _ := x.backend("kill", "198.18.0.22:8081")
		return b.State == "down" && b.Health == "unhealthy", fmt.Sprintf("be2 %s/%s (%s)", b.State, b.Health, b.LastCheck)
	})
	downAfter := time.Since(killed)
	_, atDown, _ := ld.counts()
	moreAnswers(500)

	// A server in be2's place that fails its health checks.
	var checks, requests atomic.Int64
	serveHTTP(t, x.be[1], "198.18.0.22:8081", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/health" {
			checks.Add(1)
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		requests.Add(1)
		io.WriteString(w, "tombstone\n")
	}))
	lab.Eventually(t, 10*time.Second, func() (bool, string) {
		return checks.Load() >= 2, fmt.Sprintf("%d health checks reached be2's replacement", checks.Load())
	})
	moreAnswers(500)
	ld.finish()

	a, total, failed := ld.counts()
	if failed > 0 {
		t.Errorf("%d of %d requests failed while be2 was killed and be1 was up; first failures:\n%s", failed, total, strings.Join(ld.errs, "\n"))
	}
	if n := requests.Load(); n > 0 || a["tombstone"] > 0 {
		t.Errorf("be2 down, yet lbd sent it %d requests (%d answered to the client)", n, a["tombstone"])
	}
	if b, _ := x.backend("kill", "198.18.0.22:8081"); b.State != "down" {
		t.Errorf("be2 failing its health checks is %s/%s, want down", b.State, b.Health)
	}
	t.Logf("%d GETs over 8 keep-alive connections, %d failed; be2 SIGKILLed after %d, down %v later (health every 200ms, fall 2), after %d; answers %v",
		total, failed, atKill, downAfter.Round(time.Millisecond), atDown, a)
}
