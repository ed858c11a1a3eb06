package proxy

import (
	"net"
	"testing"
	"time"
)

// TestGateServing: accept errors make a frontend not serving only when
// they last (failGrace), an accept clears them, and a listener closed
// under the accept loop (not by Stop) is not serving.
func TestGateServing(t *testing.T) {
	g := NewGate()
	if !g.Serving() {
		t.Fatal("a new gate is not serving")
	}
	g.AcceptFailed()
	if !g.Serving() {
		t.Error("one accept error made the gate not serving at once")
	}
	deadline := time.Now().Add(10 * failGrace)
	for g.Serving() {
		if time.Now().After(deadline) {
			t.Fatalf("still serving %v after accept errors began", 10*failGrace)
		}
		time.Sleep(10 * time.Millisecond)
	}
	g.AcceptOK()
	if !g.Serving() {
		t.Error("an accepted connection did not clear the accept errors")
	}

	ln, err := net.ListenTCP("tcp", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan bool)
	go func() {
		_, ok := g.Accept(ln, func() int { return 0 }, discard)
		done <- ok
	}()
	ln.Close()
	if <-done {
		t.Fatal("Accept on a closed listener returned a connection")
	}
	if g.Serving() {
		t.Error("a gate whose listener closed under it is serving")
	}

	// Stop then close is a frontend shutting down, not a failure.
	g2 := NewGate()
	ln2, err := net.ListenTCP("tcp", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		_, ok := g2.Accept(ln2, func() int { return 0 }, discard)
		done <- ok
	}()
	g2.Stop()
	ln2.Close()
	<-done
	if !g2.Serving() {
		t.Error("a gate stopped before its listener closed counts as not serving")
	}
}
