package lbsync

import (
	"bufio"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"time"
)

// A sync stream starts with syncMagic, which no memberlist stream starts
// with (they start with a message type below 14, 244 for a label header,
// or an encryption version 0 or 1), so both share the gossip TCP port.
const (
	syncMagic    = 0xB5
	protoVersion = 1
	flagKeyed    = 1 << 0 // the node has a cluster key: frames are sealed
	nonceLen     = 32
)

// errRejected is returned when the other side does not hold the same
// cluster key (or holds one where this node has none).
var errRejected = errors.New("sync: peer refused: cluster key differs")

// session is one authenticated sync stream. The dialer sends
// [syncMagic, version, flags, 32-byte nonce]; the listener answers
// [version, flags, 32-byte nonce]. With a key, each direction then uses
// AES-256-GCM under HMAC-SHA256(key, label | dialer nonce | listener nonce),
// with a frame counter as the GCM nonce, so frames cannot be replayed,
// reordered or carried over to another stream. Frames are a 4-byte
// big-endian length and the (sealed) message. Each side's first frame is a
// hello with its node name; a frame that does not open means a wrong key.
type session struct {
	conn       net.Conn
	br         *bufio.Reader
	bw         *bufio.Writer
	seal, open cipher.AEAD // nil without a key
	sent, recv uint64      // frame counters: the GCM nonces
	rbuf, wbuf []byte
	peer       string // the other node's name, from its hello
	peerInc    uint64 // the other node's incarnation, from its hello; 0: unknown
}

func newSession(conn net.Conn) *session {
	return &session{conn: conn, br: bufio.NewReaderSize(conn, 64<<10), bw: bufio.NewWriterSize(conn, 64<<10)}
}

// dialSession runs the dialer's half of the handshake on conn.
func dialSession(conn net.Conn, key []byte, self string, inc uint64, timeout time.Duration) (*session, error) {
	s := newSession(conn)
	if err := conn.SetDeadline(time.Now().Add(timeout)); err != nil {
		return nil, err
	}
	var hello [3 + nonceLen]byte
	hello[0], hello[1], hello[2] = syncMagic, protoVersion, keyFlags(key)
	rand.Read(hello[3:])
	if _, err := conn.Write(hello[:]); err != nil {
		return nil, fmt.Errorf("sync: sending handshake: %w", err)
	}
	var reply [2 + nonceLen]byte
	if _, err := io.ReadFull(s.br, reply[:]); err != nil {
		return nil, fmt.Errorf("sync: reading handshake: %w", err)
	}
	if reply[0] != protoVersion {
		return nil, fmt.Errorf("sync: peer speaks protocol %d, want %d", reply[0], protoVersion)
	}
	if reply[1] != hello[2] {
		return nil, errRejected
	}
	if err := s.keys(key, hello[3:], reply[2:], true); err != nil {
		return nil, err
	}
	if err := s.exchangeHello(self, inc, true); err != nil {
		return nil, err
	}
	return s, nil
}

// acceptSession runs the listener's half of the handshake on conn, whose
// first byte is syncMagic.
func acceptSession(conn net.Conn, key []byte, self string, inc uint64, timeout time.Duration) (*session, error) {
	s := newSession(conn)
	if err := conn.SetDeadline(time.Now().Add(timeout)); err != nil {
		return nil, err
	}
	var hello [3 + nonceLen]byte
	if _, err := io.ReadFull(s.br, hello[:]); err != nil {
		return nil, fmt.Errorf("sync: reading handshake: %w", err)
	}
	if hello[0] != syncMagic || hello[1] != protoVersion {
		return nil, fmt.Errorf("sync: handshake %#x %d, want %#x %d", hello[0], hello[1], syncMagic, protoVersion)
	}
	var reply [2 + nonceLen]byte
	reply[0], reply[1] = protoVersion, keyFlags(key)
	rand.Read(reply[2:])
	if _, err := conn.Write(reply[:]); err != nil {
		return nil, fmt.Errorf("sync: sending handshake: %w", err)
	}
	if hello[2] != reply[1] {
		return nil, errRejected
	}
	if err := s.keys(key, hello[3:], reply[2:], false); err != nil {
		return nil, err
	}
	if err := s.exchangeHello(self, inc, false); err != nil {
		return nil, err
	}
	return s, nil
}

func keyFlags(key []byte) byte {
	if len(key) > 0 {
		return flagKeyed
	}
	return 0
}

// keys derives the two directions' AEADs.
func (s *session) keys(key, dialerNonce, listenerNonce []byte, dialer bool) error {
	if len(key) == 0 {
		return nil
	}
	derive := func(label string) (cipher.AEAD, error) {
		mac := hmac.New(sha256.New, key)
		mac.Write([]byte(label))
		mac.Write(dialerNonce)
		mac.Write(listenerNonce)
		block, err := aes.NewCipher(mac.Sum(nil))
		if err != nil {
			return nil, err
		}
		return cipher.NewGCM(block)
	}
	up, err := derive("lbd sync v1 dialer")
	if err != nil {
		return fmt.Errorf("sync: deriving keys: %w", err)
	}
	down, err := derive("lbd sync v1 listener")
	if err != nil {
		return fmt.Errorf("sync: deriving keys: %w", err)
	}
	s.seal, s.open = up, down
	if !dialer {
		s.seal, s.open = down, up
	}
	return nil
}

// exchangeHello sends this node's name and incarnation and reads the
// peer's; the dialer speaks first.
func (s *session) exchangeHello(self string, inc uint64, dialer bool) error {
	send := func() error {
		if err := s.writeFrame(appendMessage(nil, &message{kind: msgHello, name: []byte(self), count: inc})); err != nil {
			return err
		}
		return s.flush()
	}
	if dialer {
		if err := send(); err != nil {
			return fmt.Errorf("sync: sending hello: %w", err)
		}
	}
	b, err := s.readFrame()
	if err != nil {
		return fmt.Errorf("sync: reading hello: %w", err)
	}
	var m message
	if err := decode(b, &m); err != nil || m.kind != msgHello {
		return fmt.Errorf("sync: bad hello: %w", errors.Join(err, ErrMalformed))
	}
	s.peer, s.peerInc = string(m.name), m.count
	if !dialer {
		if err := send(); err != nil {
			return fmt.Errorf("sync: sending hello: %w", err)
		}
	}
	return s.conn.SetDeadline(time.Time{})
}

func counterNonce(n uint64) []byte {
	var b [12]byte
	binary.BigEndian.PutUint64(b[4:], n)
	return b[:]
}

// writeFrame buffers one message; flush sends what is buffered.
func (s *session) writeFrame(p []byte) error {
	if s.seal != nil {
		s.wbuf = s.seal.Seal(s.wbuf[:0], counterNonce(s.sent), p, nil)
		s.sent++
		p = s.wbuf
	}
	var h [4]byte
	binary.BigEndian.PutUint32(h[:], uint32(len(p)))
	if _, err := s.bw.Write(h[:]); err != nil {
		return err
	}
	_, err := s.bw.Write(p)
	return err
}

func (s *session) flush() error { return s.bw.Flush() }

// readFrame returns the next message, valid until the next call. A frame
// that does not open returns errRejected.
func (s *session) readFrame() ([]byte, error) {
	var h [4]byte
	if _, err := io.ReadFull(s.br, h[:]); err != nil {
		return nil, err
	}
	n := binary.BigEndian.Uint32(h[:])
	if n > maxFrame {
		return nil, fmt.Errorf("sync: frame of %d bytes exceeds %d", n, maxFrame)
	}
	if cap(s.rbuf) < int(n) {
		s.rbuf = make([]byte, n)
	}
	b := s.rbuf[:n]
	if _, err := io.ReadFull(s.br, b); err != nil {
		return nil, err
	}
	if s.open == nil {
		return b, nil
	}
	p, err := s.open.Open(b[:0], counterNonce(s.recv), b, nil)
	if err != nil {
		return nil, errRejected
	}
	s.recv++
	return p, nil
}
