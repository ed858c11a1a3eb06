package lbsync

import (
	"bytes"
	"errors"
	"net"
	"testing"
	"time"
)

var (
	key1 = bytes.Repeat([]byte{1}, 32)
	key2 = bytes.Repeat([]byte{2}, 32)
)

// handshake runs both halves over a pipe.
func handshake(t *testing.T, dialKey, listenKey []byte) (d, l *session, derr, lerr error) {
	t.Helper()
	a, b := net.Pipe()
	t.Cleanup(func() { a.Close(); b.Close() })
	done := make(chan struct{})
	go func() {
		defer close(done)
		l, lerr = acceptSession(b, listenKey, "lb2", 22, time.Second)
		if lerr != nil {
			b.Close()
		}
	}()
	d, derr = dialSession(a, dialKey, "lb1", 11, time.Second)
	if derr != nil {
		a.Close()
	}
	<-done
	return d, l, derr, lerr
}

func TestSessionHandshake(t *testing.T) {
	tests := []struct {
		name                  string
		dialKey, listenKey    []byte
		dialReject, lisReject bool
	}{
		{"same key", key1, key1, false, false},
		{"no keys", nil, nil, false, false},
		{"other key", key1, key2, true, true},
		{"dialer without key", nil, key1, true, true},
		{"listener without key", key1, nil, true, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d, l, derr, lerr := handshake(t, tc.dialKey, tc.listenKey)
			// A dialer refused by the listener sees its stream closed.
			if tc.dialReject != (derr != nil) {
				t.Errorf("dialer: err %v, want refusal %v", derr, tc.dialReject)
			}
			if got := errors.Is(lerr, errRejected); got != tc.lisReject {
				t.Errorf("listener: err %v, want errRejected %v", lerr, tc.lisReject)
			}
			if derr != nil || lerr != nil {
				return
			}
			if d.peer != "lb2" || l.peer != "lb1" {
				t.Errorf("peers %q %q, want lb2 lb1", d.peer, l.peer)
			}
			go func() {
				d.writeFrame([]byte("payload"))
				d.flush()
			}()
			b, err := l.readFrame()
			if err != nil || string(b) != "payload" {
				t.Errorf("frame %q, %v; want payload", b, err)
			}
		})
	}
}

// TestSessionTampered flips a bit of a sealed frame: it does not open.
func TestSessionTampered(t *testing.T) {
	d, l, derr, lerr := handshake(t, key1, key1)
	if derr != nil || lerr != nil {
		t.Fatal(derr, lerr)
	}
	frame := d.seal.Seal(nil, counterNonce(d.sent), []byte("payload"), nil)
	frame[3] ^= 1
	go func() {
		d.bw.Write([]byte{0, 0, 0, byte(len(frame))})
		d.bw.Write(frame)
		d.flush()
	}()
	if _, err := l.readFrame(); !errors.Is(err, errRejected) {
		t.Errorf("tampered frame: %v, want errRejected", err)
	}
}
