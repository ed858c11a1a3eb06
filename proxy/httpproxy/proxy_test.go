package httpproxy

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"lbd/config"
)

// routedConfig is a frontend with routes of every kind, to pools that
// poolsTOML adds.
var routedConfig = frontendTOML("default", `route = [
  {host = "api.example.com", path_prefix = "/v2/", pool = "api-v2"},
  {host = "api.example.com", pool = "api"},
  {host = "*.example.com", pool = "wild"},
  {path_prefix = "/static/", pool = "static"},
  {header = "X-Canary", pool = "canary"},
  {header = "X-Tier: gold", pool = "gold"},
]`)

func TestRouting(t *testing.T) {
	names := []string{"default", "api-v2", "api", "wild", "static", "canary", "gold"}
	var bs []*backend
	for _, n := range names {
		bs = append(bs, startBackend(t, n, nil))
	}
	f, _ := setup(t, routedConfig+poolsTOML(names...), bs...)
	c := client(f)
	tests := []struct {
		name string
		path string
		hdr  []string
		want string
	}{
		{"host and path prefix", "/v2/users", []string{"Host", "api.example.com"}, "api-v2"},
		{"host, other path", "/v1/users", []string{"Host", "api.example.com"}, "api"},
		{"host with port and other case", "/x", []string{"Host", "API.Example.COM:8080"}, "api"},
		{"path prefix is not a host match", "/v2/x", []string{"Host", "www.example.com"}, "wild"},
		{"wildcard, one label", "/", []string{"Host", "www.example.com"}, "wild"},
		{"wildcard, two labels", "/", []string{"Host", "a.b.example.com"}, "wild"},
		{"wildcard does not match the bare domain", "/", []string{"Host", "example.com"}, "default"},
		{"wildcard needs the dot", "/", []string{"Host", "badexample.com"}, "default"},
		{"path prefix", "/static/app.js", []string{"Host", "other.org"}, "static"},
		{"path prefix is a prefix, not a segment", "/staticx", []string{"Host", "other.org"}, "default"},
		{"header present", "/", []string{"Host", "other.org", "X-Canary", "anything"}, "canary"},
		{"header with value", "/", []string{"Host", "other.org", "X-Tier", "gold"}, "gold"},
		{"header with another value", "/", []string{"Host", "other.org", "X-Tier", "silver"}, "default"},
		{"first match wins", "/static/x", []string{"Host", "api.example.com"}, "api"},
		{"default", "/", []string{"Host", "other.org"}, "default"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := get(t, c, "http://x"+tt.path, tt.hdr...)
			if resp.StatusCode != 200 || body != tt.want {
				t.Errorf("status %d body %q, want 200 %q", resp.StatusCode, body, tt.want)
			}
		})
	}
}

func TestNoRouteIs404(t *testing.T) {
	b := startBackend(t, "api", nil)
	f, _ := setup(t, frontendTOML("", "")+`
  [[frontend.route]]
  host = "api.example.com"
  pool = "api"
`+poolsTOML("api"), b)
	c := client(f)
	resp, body := get(t, c, "http://x/", "Host", "www.example.com")
	if !isErrorPage(resp, body, 404) {
		t.Errorf("got %d, id %q, body %q; want 404 with the request id in header and body", resp.StatusCode, resp.Header.Get("X-Request-ID"), body)
	}
	// The connection is still usable.
	if resp, body := get(t, c, "http://x/", "Host", "api.example.com"); resp.StatusCode != 200 || body != "api" {
		t.Errorf("after the 404: %d %q", resp.StatusCode, body)
	}
	if n := len(b.requests()); n != 1 {
		t.Errorf("backend saw %d requests, want 1", n)
	}
}

func TestForwardedHeaders(t *testing.T) {
	b := startBackend(t, "b", nil)
	f, _ := simple(t, "", b)
	c := client(f)
	tests := []struct {
		name string
		hdr  []string
		want map[string][]string
	}{{
		name: "added",
		hdr:  []string{"Host", "www.example.com"},
		want: map[string][]string{"X-Forwarded-For": {"127.0.0.1"}, "X-Forwarded-Proto": {"http"}, "X-Forwarded-Host": {"www.example.com"}},
	}, {
		name: "appended to the client's X-Forwarded-For",
		hdr:  []string{"Host", "h", "X-Forwarded-For", "198.51.100.7"},
		want: map[string][]string{"X-Forwarded-For": {"198.51.100.7, 127.0.0.1"}, "X-Forwarded-Proto": {"http"}, "X-Forwarded-Host": {"h"}},
	}, {
		name: "several X-Forwarded-For fields joined",
		hdr:  []string{"Host", "h", "X-Forwarded-For", "198.51.100.7, 203.0.113.9", "X-Forwarded-For", "192.0.2.1"},
		want: map[string][]string{"X-Forwarded-For": {"198.51.100.7, 203.0.113.9, 192.0.2.1, 127.0.0.1"}, "X-Forwarded-Proto": {"http"}, "X-Forwarded-Host": {"h"}},
	}, {
		name: "client's proto and host replaced",
		hdr:  []string{"Host", "h", "X-Forwarded-Proto", "https", "X-Forwarded-Host", "evil.example"},
		want: map[string][]string{"X-Forwarded-For": {"127.0.0.1"}, "X-Forwarded-Proto": {"http"}, "X-Forwarded-Host": {"h"}},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			get(t, c, "http://x/", tt.hdr...)
			r := b.last(t)
			got := map[string][]string{}
			for k := range tt.want {
				got[k] = r.Header.Values(k)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("(-want +got)\n%s", diff)
			}
		})
	}
}

func TestRequestID(t *testing.T) {
	b := startBackend(t, "b", nil)
	f, _ := simple(t, "", b)
	c := client(f)

	t.Run("generated", func(t *testing.T) {
		ids := map[string]bool{}
		for i := 0; i < 3; i++ {
			resp, _ := get(t, c, "http://x/")
			id := resp.Header.Get("X-Request-ID")
			if len(id) != 32 || ids[id] {
				t.Fatalf("id %q: want 32 hex digits, new each time", id)
			}
			ids[id] = true
			if got := b.last(t).Header.Get("X-Request-ID"); got != id {
				t.Errorf("backend saw %q, client got %q", got, id)
			}
		}
	})
	t.Run("passed through", func(t *testing.T) {
		resp, _ := get(t, c, "http://x/", "X-Request-ID", "client-id-42")
		if got := resp.Header.Get("X-Request-ID"); got != "client-id-42" {
			t.Errorf("client got %q", got)
		}
		if got := b.last(t).Header.Values("X-Request-ID"); !cmp.Equal(got, []string{"client-id-42"}) {
			t.Errorf("backend saw %q", got)
		}
	})
	t.Run("insane id replaced", func(t *testing.T) {
		resp, _ := get(t, c, "http://x/", "X-Request-ID", strings.Repeat("a", 100))
		if got := resp.Header.Get("X-Request-ID"); len(got) != 32 {
			t.Errorf("client got %q, want a new id", got)
		}
	})
}

func TestHopByHopRequest(t *testing.T) {
	b := startBackend(t, "b", nil)
	f, _ := simple(t, "", b)
	resp, _ := raw(t, f, "GET / HTTP/1.1\r\nHost: h\r\n"+
		"Connection: keep-alive, X-Secret, Upgrade\r\n"+
		"X-Secret: 1\r\nX-Kept: 2\r\nKeep-Alive: timeout=5\r\nProxy-Connection: keep-alive\r\n"+
		"TE: trailers\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAAP__\r\n\r\n")
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	r := b.last(t)
	for _, k := range []string{"X-Secret", "Keep-Alive", "Proxy-Connection", "Te", "Upgrade"} {
		if v, ok := r.Header[k]; ok {
			t.Errorf("backend saw %s: %q", k, v)
		}
	}
	if r.Header.Get("X-Kept") != "2" {
		t.Errorf("X-Kept lost: %v", r.Header)
	}
}

func TestHopByHopResponse(t *testing.T) {
	s := startScripted(t, func(c net.Conn, r *bufio.Reader) {
		for {
			if _, err := readHead(r); err != nil {
				return
			}
			io.WriteString(c, "HTTP/1.1 200 OK\r\nConnection: X-Internal\r\nX-Internal: secret\r\n"+
				"Keep-Alive: timeout=5\r\nX-Public: yes\r\nContent-Length: 2\r\n\r\nok")
		}
	})
	f, _ := setup(t, appConfig("", ""), &backend{addr: s.addr})
	resp, body := get(t, client(f), "http://x/")
	if body != "ok" || resp.Header.Get("X-Public") != "yes" {
		t.Fatalf("%d %q %v", resp.StatusCode, body, resp.Header)
	}
	for _, k := range []string{"X-Internal", "Keep-Alive", "Connection"} {
		if v, ok := resp.Header[k]; ok {
			t.Errorf("client saw %s: %q", k, v)
		}
	}
}

func TestKeepAliveReusesBackendConnections(t *testing.T) {
	b := startBackend(t, "b", nil)
	f, _ := simple(t, "", b)
	// Several clients, one after the other, each with several requests:
	// the backend connection is pooled across them.
	for i := 0; i < 5; i++ {
		c := client(f)
		for j := 0; j < 10; j++ {
			if resp, _ := get(t, c, "http://x/"); resp.StatusCode != 200 {
				t.Fatalf("status %d", resp.StatusCode)
			}
		}
		c.CloseIdleConnections()
	}
	if n := b.ln.accepts.Load(); n != 1 {
		t.Errorf("backend accepted %d connections for 50 sequential requests, want 1", n)
	}
	if n := len(b.requests()); n != 50 {
		t.Errorf("backend saw %d requests", n)
	}
}

func TestPipelinedRequests(t *testing.T) {
	b := startBackend(t, "b", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, r.URL.Path)
	})
	f, _ := simple(t, "", b)
	c := dial(t, f)
	defer c.Close()
	io.WriteString(c, "GET /one HTTP/1.1\r\nHost: h\r\n\r\nPOST /two HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabcGET /three HTTP/1.1\r\nHost: h\r\n\r\n")
	br := bufio.NewReader(c)
	var got []string
	for i := 0; i < 3; i++ {
		_, body := readResponse(t, br)
		got = append(got, body)
	}
	if diff := cmp.Diff([]string{"/one", "/two", "/three"}, got); diff != "" {
		t.Errorf("(-want +got)\n%s", diff)
	}
}

func TestHTTP10(t *testing.T) {
	b := startBackend(t, "b", func(w http.ResponseWriter, r *http.Request) {
		w.(http.Flusher).Flush() // no Content-Length: chunked to the proxy
		io.WriteString(w, "chunked body")
	})
	f, _ := simple(t, "", b)
	c := dial(t, f)
	defer c.Close()
	io.WriteString(c, "GET / HTTP/1.0\r\n\r\n")
	all, err := io.ReadAll(c) // the proxy closes after an HTTP/1.0 response
	if err != nil {
		t.Fatal(err)
	}
	head, body, _ := strings.Cut(string(all), "\r\n\r\n")
	if body != "chunked body" || strings.Contains(strings.ToLower(head), "transfer-encoding") {
		t.Errorf("HTTP/1.0 client got head %q body %q; want the body de-chunked", head, body)
	}
}

func TestUpdateAppliesToOpenConnections(t *testing.T) {
	b1, b2 := startBackend(t, "one", nil), startBackend(t, "two", nil)
	f, pools := setup(t, frontendTOML("one", "")+poolsTOML("one", "two"), b1, b2)
	c := client(f)
	if _, body := get(t, c, "http://x/"); body != "one" {
		t.Fatalf("before reload: %q", body)
	}
	cfg := f.Config()
	cfg.DefaultPool = "two"
	cfg.Routes = []config.Route{{PathPrefix: "/one/", Pool: "one"}}
	f.Update(cfg, pools)
	for path, want := range map[string]string{"/": "two", "/one/x": "one"} {
		if _, body := get(t, c, "http://x"+path); body != want {
			t.Errorf("after reload, %s went to %q, want %q", path, body, want)
		}
	}
	if n := f.Stats().Total; n != 1 {
		t.Errorf("%d connections accepted, want the one kept open", n)
	}
}

func TestHashKeyHeader(t *testing.T) {
	var bs []*backend
	for i := 0; i < 3; i++ {
		bs = append(bs, startBackend(t, fmt.Sprint("b", i), nil))
	}
	f, _ := simple(t, `algorithm = "maglev"
hash_key = "header:X-User"`, bs...)
	c := client(f)
	for _, user := range []string{"alice", "bob", "carol", "dave"} {
		_, first := get(t, c, "http://x/", "X-User", user)
		for i := 0; i < 5; i++ {
			if _, body := get(t, c, "http://x/", "X-User", user); body != first {
				t.Errorf("user %s went to %s, then %s", user, first, body)
			}
		}
	}
}
