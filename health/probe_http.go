package health

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"lbd/config"
)

// maxBody is how much of a response body expect_body searches.
const maxBody = 64 << 10

// maxHead is how much status line and headers a response may have.
const maxHead = 64 << 10

// max1xx is how many interim (1xx) responses a check skips before it
// judges the one that follows, as net/http's client does.
const max1xx = 5

// httpProber is the "http" check: one HTTP/1.1 request on a new
// connection ("Connection: close"), judged by the status of the response
// and, when expect_body is set, a substring of its body. Redirects are not
// followed: a 302 is judged as a 302. It writes the request itself and
// reads the response with http.ReadResponse, as HAProxy's http-check does
// without a client library: net/http's Transport runs three goroutines
// per connection, which cost most of the check's CPU (BenchmarkProbeCPU).
type httpProber struct {
	method, path, host string
	expect             StatusSet
	body               []byte
	timeout            time.Duration
	head, tail         string        // the request around its Host header
	req                *http.Request // tells ReadResponse the method (HEAD has no body); never changed
}

func newHTTPProber(h config.Health) (*httpProber, error) {
	expect, err := ParseStatusSet(h.ExpectStatus)
	if err != nil {
		return nil, err
	}
	method := h.Method
	if method == "" {
		method = http.MethodGet
	}
	path := h.Path
	if path == "" {
		path = "/"
	}
	switch {
	case !isToken(method):
		return nil, fmt.Errorf("health: method %q is not an HTTP method", method)
	case path[0] != '/':
		return nil, fmt.Errorf("health: path %q does not start with \"/\"", path)
	case strings.IndexFunc(path, isCTLOrSpace) >= 0:
		return nil, fmt.Errorf("health: path %q has a space or a control character", path)
	case strings.IndexFunc(h.Host, isCTLOrSpace) >= 0:
		return nil, fmt.Errorf("health: host %q has a space or a control character", h.Host)
	}
	tail := "\r\nUser-Agent: lbd-health\r\nConnection: close\r\n"
	switch method {
	case http.MethodPost, http.MethodPut, http.MethodPatch:
		tail += "Content-Length: 0\r\n" // as net/http sends; some servers want it (411)
	}
	return &httpProber{
		method:  method,
		path:    path,
		host:    h.Host,
		expect:  expect,
		body:    []byte(h.ExpectBody),
		timeout: h.Timeout.D(),
		head:    method + " " + path + " HTTP/1.1\r\nHost: ",
		tail:    tail + "\r\n",
		req:     &http.Request{Method: method},
	}, nil
}

// isToken reports whether s is an RFC 9110 token, as a method must be.
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range []byte(s) {
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`"(),/:;<=>?@[\]{}`, c) >= 0 {
			return false
		}
	}
	return true
}

func isCTLOrSpace(r rune) bool { return r <= ' ' || r == 0x7f }

// responseReader reads one response: its head, at most maxHead bytes,
// then at most maxBody more.
type responseReader struct {
	lr io.LimitedReader
	br *bufio.Reader // reads lr
}

// readers recycles responseReaders, whose buffer is most of what a check
// would otherwise allocate.
var readers = sync.Pool{New: func() any {
	rd := &responseReader{}
	rd.br = bufio.NewReaderSize(&rd.lr, 4096)
	return rd
}}

// release returns rd to readers.
func (rd *responseReader) release() {
	rd.lr = io.LimitedReader{}
	rd.br.Reset(&rd.lr)
	readers.Put(rd)
}

// checkConn is the connection of a check: an *os.File on the raw connect
// path, a net.Conn from net.Dialer otherwise.
type checkConn interface {
	io.ReadWriteCloser
	SetDeadline(time.Time) error
}

// netDial connects with net.Dialer, for addresses the raw path does not
// handle.
func netDial(ctx context.Context, addr string, timeout time.Duration) (checkConn, Result) {
	d := net.Dialer{KeepAlive: -1} // no keepalive options for a connection that lives milliseconds
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, Result{Text: describe(ctx, err, timeout)}
	}
	return c, Result{OK: true, Text: "connected"}
}

func (p *httpProber) Probe(ctx context.Context, addr string) Result {
	c, r := dialCheck(ctx, addr, p.timeout)
	if c == nil {
		return r
	}
	defer c.Close()
	if dl, has := ctx.Deadline(); has {
		_ = c.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { _ = c.SetDeadline(time.Unix(1, 0)) })
	defer stop()

	host := p.host
	if host == "" {
		host = addr
	}
	req := make([]byte, 0, len(p.head)+len(host)+len(p.tail))
	req = append(append(append(req, p.head...), host...), p.tail...)
	if _, err := c.Write(req); err != nil {
		return Result{Text: describe(ctx, err, p.timeout)}
	}
	rd := readers.Get().(*responseReader)
	defer rd.release()
	rd.lr = io.LimitedReader{R: c, N: maxHead}
	var resp *http.Response
	for i := 0; ; i++ {
		var err error
		if resp, err = http.ReadResponse(rd.br, p.req); err != nil {
			if rd.lr.N == 0 {
				return Result{Text: "response head over 64 KiB"}
			}
			return Result{Text: describe(ctx, err, p.timeout)}
		}
		if resp.StatusCode >= 200 || resp.StatusCode == http.StatusSwitchingProtocols || i == max1xx {
			break
		}
	}
	rd.lr.N += maxBody // and what the buffer holds already
	text := "HTTP " + strconv.Itoa(resp.StatusCode)
	if !p.expect.Match(resp.StatusCode) {
		return Result{Text: text}
	}
	if len(p.body) > 0 {
		b, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
		if err != nil {
			return Result{Text: text + ", body: " + describe(ctx, err, p.timeout)}
		}
		if !bytes.Contains(b, p.body) {
			return Result{Text: fmt.Sprintf("%s, body lacks %q", text, p.body)}
		}
	}
	return Result{OK: true, Text: text}
}
