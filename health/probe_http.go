package health

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"time"

	"lbd/config"
)

// maxBody is how much of a response body expect_body searches.
const maxBody = 64 << 10

// httpProber is the "http" check: one request on a new connection, judged
// by its status and, when expect_body is set, a substring of its body.
// Redirects are not followed: a 302 is judged as a 302.
type httpProber struct {
	method, path, host string
	expect             StatusSet
	body               []byte
	timeout            time.Duration
	client             *http.Client
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
	if path[0] != '/' {
		return nil, fmt.Errorf("health: path %q does not start with \"/\"", path)
	}
	tr := &http.Transport{
		Proxy:                  nil, // never HTTP_PROXY from the environment
		DialContext:            (&net.Dialer{}).DialContext,
		DisableKeepAlives:      true,
		DisableCompression:     true,
		MaxResponseHeaderBytes: 64 << 10,
	}
	return &httpProber{
		method:  method,
		path:    path,
		host:    h.Host,
		expect:  expect,
		body:    []byte(h.ExpectBody),
		timeout: h.Timeout.D(),
		client: &http.Client{
			Transport:     tr,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
	}, nil
}

func (p *httpProber) Probe(ctx context.Context, addr string) Result {
	req, err := http.NewRequestWithContext(ctx, p.method, "http://"+addr+p.path, nil)
	if err != nil {
		return Result{Text: "bad request: " + err.Error()}
	}
	if p.host != "" {
		req.Host = p.host
	}
	req.Header.Set("User-Agent", "lbd-health")
	resp, err := p.client.Do(req)
	if err != nil {
		return Result{Text: describe(ctx, err, p.timeout)}
	}
	defer resp.Body.Close()
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

// close drops the transport's connections.
func (p *httpProber) close() { p.client.CloseIdleConnections() }
