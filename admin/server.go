package admin

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// Handler answers one request. It is called from one goroutine per client
// connection and must be safe for concurrent use.
type Handler func(ctx context.Context, req Request) Response

// SocketMode is the permission of the admin socket: the owner (root) and the
// members of its group (the lbd group, when it exists) may talk to lbd.
const SocketMode = 0o660

// idleTimeout closes a client connection that sends nothing for this long.
const idleTimeout = 5 * time.Minute

// Server serves the admin protocol on a unix socket.
type Server struct {
	path string
	ln   *net.UnixListener
	log  *slog.Logger

	mu     sync.Mutex // guards conns and closed
	conns  map[net.Conn]struct{}
	closed bool
	wg     sync.WaitGroup // one per connection goroutine
}

// Listen creates the admin socket at path with mode 0660. A socket left
// behind by a crashed lbd (nobody answers on it) is replaced; a socket on
// which another lbd answers is refused with an error that says so.
func Listen(path string, log *slog.Logger) (*Server, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("admin: creating socket directory: %w", err)
	}
	if err := removeStale(path); err != nil {
		return nil, err
	}
	// Bind under a temporary name, set the mode, then rename into place, so
	// that the socket is never reachable with looser permissions.
	tmp := fmt.Sprintf("%s.%d.tmp", path, os.Getpid())
	_ = os.Remove(tmp)
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: tmp, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("admin: listening on %s: %w", path, err)
	}
	ln.SetUnlinkOnClose(false)
	if err := setOwnership(tmp); err != nil {
		ln.Close()
		os.Remove(tmp)
		return nil, err
	}
	if err := os.Rename(tmp, path); err != nil {
		ln.Close()
		os.Remove(tmp)
		return nil, fmt.Errorf("admin: placing socket at %s: %w", path, err)
	}
	return &Server{path: path, ln: ln, log: log, conns: make(map[net.Conn]struct{})}, nil
}

// removeStale removes a socket at path that no process answers on.
func removeStale(path string) error {
	fi, err := os.Lstat(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("admin: checking %s: %w", path, err)
	}
	if fi.Mode()&os.ModeSocket == 0 {
		return fmt.Errorf("admin: %s exists and is not a socket", path)
	}
	c, err := net.DialTimeout("unix", path, time.Second)
	if err == nil {
		c.Close()
		return fmt.Errorf("admin: another lbd is already serving %s", path)
	}
	if !errors.Is(err, syscall.ECONNREFUSED) {
		return fmt.Errorf("admin: checking %s: %w", path, err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("admin: removing stale socket %s: %w", path, err)
	}
	return nil
}

// setOwnership gives the socket mode 0660 and, when a group named lbd
// exists, that group.
func setOwnership(path string) error {
	if err := os.Chmod(path, SocketMode); err != nil {
		return fmt.Errorf("admin: chmod %s: %w", path, err)
	}
	if g, err := user.LookupGroup("lbd"); err == nil {
		if gid, err := strconv.Atoi(g.Gid); err == nil {
			if err := os.Chown(path, -1, gid); err != nil {
				return fmt.Errorf("admin: chown %s: %w", path, err)
			}
		}
	}
	return nil
}

// Path is the socket's file name.
func (s *Server) Path() string { return s.path }

// Serve accepts clients until ctx is done or Close is called, answering
// each request with h. It returns nil after an orderly stop.
func (s *Server) Serve(ctx context.Context, h Handler) error {
	stop := context.AfterFunc(ctx, func() { s.Close() })
	defer stop()
	var delay time.Duration
	for {
		c, err := s.ln.Accept()
		if err != nil {
			s.mu.Lock()
			closed := s.closed
			s.mu.Unlock()
			if closed {
				return nil
			}
			if errors.Is(err, net.ErrClosed) {
				return fmt.Errorf("admin: accepting: %w", err)
			}
			// EMFILE and friends pass: back off and keep serving, so
			// that lbctl works again once descriptors are free.
			delay = min(max(2*delay, 5*time.Millisecond), time.Second)
			s.log.Error("admin socket: accept failed", "err", err, "retry_in", delay)
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(delay):
			}
			continue
		}
		delay = 0
		if !s.track(c) {
			c.Close()
			return nil
		}
		go func() {
			defer s.wg.Done()
			defer s.untrack(c)
			s.serveConn(ctx, c, h)
		}()
	}
}

func (s *Server) track(c net.Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.conns[c] = struct{}{}
	s.wg.Add(1)
	return true
}

func (s *Server) untrack(c net.Conn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
	c.Close()
}

func (s *Server) serveConn(ctx context.Context, c net.Conn, h Handler) {
	r := bufio.NewReaderSize(c, 4096)
	enc := json.NewEncoder(c)
	for {
		c.SetReadDeadline(time.Now().Add(idleTimeout))
		line, err := readLine(r)
		if err != nil {
			if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
				s.log.Debug("admin client dropped", "err", err)
			}
			return
		}
		resp := s.answer(ctx, line, h)
		c.SetWriteDeadline(time.Now().Add(10 * time.Second))
		if err := enc.Encode(resp); err != nil {
			return
		}
	}
}

// answer decodes one request line and calls h; malformed requests get an
// error response, never a panic.
func (s *Server) answer(ctx context.Context, line []byte, h Handler) (resp Response) {
	var req Request
	if err := json.Unmarshal(line, &req); err != nil {
		return ErrorResponse(fmt.Errorf("admin: malformed request: %w", err))
	}
	if req.V != Version {
		return ErrorResponse(fmt.Errorf("admin: protocol version %d not supported (lbd speaks %d): use the lbctl of the same release", req.V, Version))
	}
	defer func() {
		if p := recover(); p != nil {
			s.log.Error("admin handler panicked", "cmd", req.Cmd, "panic", p)
			resp = ErrorResponse(fmt.Errorf("admin: internal error handling %q", req.Cmd))
		}
	}()
	return h(ctx, req)
}

// readLine reads one newline-terminated message of at most MaxMessage bytes.
func readLine(r *bufio.Reader) ([]byte, error) {
	var buf []byte
	for {
		chunk, err := r.ReadSlice('\n')
		buf = append(buf, chunk...)
		if len(buf) > MaxMessage {
			return nil, fmt.Errorf("admin: message longer than %d bytes", MaxMessage)
		}
		if err == nil {
			return buf, nil
		}
		if !errors.Is(err, bufio.ErrBufferFull) {
			if len(buf) > 0 && errors.Is(err, io.EOF) {
				return buf, nil
			}
			return nil, err
		}
	}
}

// Close stops accepting, closes every client connection, waits for their
// goroutines and removes the socket file. It is safe to call more than once.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	err := s.ln.Close()
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
	if rerr := os.Remove(s.path); rerr != nil && !errors.Is(rerr, os.ErrNotExist) && err == nil {
		err = rerr
	}
	if err != nil && !errors.Is(err, net.ErrClosed) {
		return fmt.Errorf("admin: closing %s: %w", s.path, err)
	}
	return nil
}
