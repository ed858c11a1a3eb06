package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"lbd/admin"
	"lbd/lab"
)

// l7Config: lb1 (198.18.0.11) in front of be1 and be2 (198.18.0.21, .22).
// Each client-facing check has a frontend and pool of its own, so that
// the subtests running side by side do not see each other's connections.
// dir is the state directory, cert and key the certificate and key files.
func l7Config(dir, cert, key string) string {
	return lb1Node(dir) + webFrontend + fmt.Sprintf(`
[[frontend]]
name = "tls"
bind = "198.18.0.11:443"
mode = "http"
default_pool = "app"
tls_cert = %q
tls_key = %q
`, cert, key) + `
[[frontend]]
name = "ws"
bind = "198.18.0.11:8000"
mode = "http"
default_pool = "ws"
idle_timeout = "5s"

[[frontend]]
name = "grpc"
bind = "198.18.0.11:50051"
mode = "http"
default_pool = "grpc"

[[frontend]]
name = "load"
bind = "198.18.0.11:8081"
mode = "http"
default_pool = "kill"

[[pool]]
name = "app"
` + backendsTOML("198.18.0.21:8080", "198.18.0.22:8080") + `
[[pool]]
name = "ws"
algorithm = "least_conn"
` + backendsTOML("198.18.0.21:8080", "198.18.0.22:8080") + `
[[pool]]
name = "grpc"
protocol = "h2c"
` + backendsTOML("198.18.0.21:9090", "198.18.0.22:9090") + `
[[pool]]
name = "kill"
retries = 1
` + httpHealth("200ms", "1s") + backendsTOML("198.18.0.21:8081", "198.18.0.22:8081")
}

// l7Lab is the running topology the L7 subtests share.
type l7Lab struct {
	*lb1Lab
	be       []*lab.Host
	killable []*lab.Proc // the backends of pool "kill", one per be
	certs    l7Certs
}

// TestL7InLab drives lbd's mode = "http" frontends with real clients from
// a client namespace: curl over HTTP/1.1 and over HTTP/2 with TLS and SNI
// for two names, h2load, a WebSocket echo held open for a minute, a gRPC
// client against grpc-go's interop TestService, and keep-alive load while
// a backend is SIGKILLed.
func TestL7InLab(t *testing.T) {
	x := &l7Lab{lb1Lab: newLB1Lab(t)}
	x.be = []*lab.Host{x.l.AddHostAddr("be1", 21), x.l.AddHostAddr("be2", 22)}
	for _, h := range x.be {
		startL7Backend(t, h, h.IPv4.String()+":8080", h.IPv4.String()+":9090")
		x.killable = append(x.killable, startL7Backend(t, h, h.IPv4.String()+":8081", ""))
	}
	x.certs = writeL7Certs(t, x.dir, "a.example.test", "b.example.test")

	x.start(t, l7Config(x.dir, x.certs.Cert, x.certs.Key))
	for _, addr := range []string{"198.18.0.21:8081", "198.18.0.22:8081"} {
		lab.Eventually(t, 10*time.Second, func() (bool, string) {
			b, ok := x.backend("kill", addr)
			return ok && b.Health == "healthy", fmt.Sprintf("pool kill, %s: %+v", addr, b)
		})
	}

	// The WebSocket subtest mostly waits; the others load the machine and
	// run one after the other beside it.
	t.Run("websocket_60s", func(t *testing.T) {
		t.Parallel()
		x.websocket(t)
	})
	t.Run("serial", func(t *testing.T) {
		t.Parallel()
		t.Run("curl_http1", x.curlHTTP1)
		t.Run("curl_h2_tls_sni", x.curlH2SNI)
		t.Run("h2load", x.h2load)
		t.Run("grpc", x.grpc)
		t.Run("backend_killed", x.backendKilled)
	})
}

// backend finds a backend of a pool in lbctl status.
func (x *l7Lab) backend(pool, addr string) (admin.Backend, bool) {
	st, err := x.status()
	if err != nil {
		return admin.Backend{}, false
	}
	for _, p := range st.Pools {
		for _, b := range p.Backends {
			if p.Name == pool && b.Address == addr {
				return b, true
			}
		}
	}
	return admin.Backend{}, false
}

// curl runs curl in the client host with the given arguments, writing the
// response head and body to files, and returns what -w printed, the head
// and the body.
func (x *l7Lab) curl(t *testing.T, name, format string, args ...string) (w string, head map[string]string, body []byte) {
	t.Helper()
	hdr, out := filepath.Join(x.dir, name+".head"), filepath.Join(x.dir, name+".body")
	args = append([]string{"-sS", "--max-time", "20", "-D", hdr, "-o", out, "-w", format}, args...)
	w, err := x.client.Run(t.Context(), "curl", args...)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(hdr)
	if err != nil {
		t.Fatal(err)
	}
	head = map[string]string{}
	for _, line := range strings.Split(string(raw), "\n") {
		if k, v, ok := strings.Cut(strings.TrimSpace(line), ":"); ok {
			head[strings.ToLower(k)] = strings.TrimSpace(v)
		}
	}
	if body, err = os.ReadFile(out); err != nil {
		t.Fatal(err)
	}
	return w, head, body
}

// backendSaw decodes the /headers answer of a backend.
func backendSaw(t *testing.T, body []byte) l7Seen {
	t.Helper()
	var s l7Seen
	if err := json.Unmarshal(body, &s); err != nil {
		t.Fatalf("backend answer %q: %v", body, err)
	}
	return s
}

// curlHTTP1: status, body, X-Forwarded-For appended to the client's, and
// the request id generated (or passed through) and returned.
func (x *l7Lab) curlHTTP1(t *testing.T) {
	for i := range 2 {
		w, _, body := x.curl(t, "h1root", "%{http_code} %{http_version}", "--http1.1", "http://198.18.0.11/")
		if w != "200 1.1" || (string(body) != "be1\n" && string(body) != "be2\n") {
			t.Errorf("GET / #%d: %q, body %q; want 200 1.1 and be1 or be2", i, w, body)
		}
	}
	w, head, body := x.curl(t, "h1", "%{http_code} %{http_version}", "--http1.1",
		"-H", "X-Forwarded-For: 198.19.0.7", "http://198.18.0.11/headers")
	s := backendSaw(t, body)
	if w != "200 1.1" {
		t.Errorf("curl -w: %q, want 200 1.1", w)
	}
	if want := "198.19.0.7, 198.18.0.50"; s.ForwardedFor != want {
		t.Errorf("backend saw X-Forwarded-For %q, want %q (appended, not replaced)", s.ForwardedFor, want)
	}
	if s.ForwardedProto != "http" || s.Host != "198.18.0.11" {
		t.Errorf("backend saw X-Forwarded-Proto %q, Host %q; want http, 198.18.0.11", s.ForwardedProto, s.Host)
	}
	if rid := head["x-request-id"]; rid == "" || rid != s.RequestID {
		t.Errorf("request id returned %q, backend saw %q; want the same, not empty", rid, s.RequestID)
	}
	_, head, body = x.curl(t, "h1rid", "%{http_code}", "--http1.1", "-H", "X-Request-ID: lab-rid-42", "http://198.18.0.11/headers")
	if s := backendSaw(t, body); head["x-request-id"] != "lab-rid-42" || s.RequestID != "lab-rid-42" {
		t.Errorf("client's request id: returned %q, backend saw %q; want lab-rid-42 passed through", head["x-request-id"], s.RequestID)
	}
}

// curlH2SNI: for each name, curl with hostname verification against the
// test CA negotiates HTTP/2 by ALPN, and the certificate served is the
// name's (a wrong one fails verification: curl exits 60).
func (x *l7Lab) curlH2SNI(t *testing.T) {
	for _, name := range []string{"a.example.test", "b.example.test"} {
		w, _, body := x.curl(t, "h2-"+name, "%{http_code} %{http_version} %{ssl_verify_result}\n%{certs}",
			"--http2", "--cacert", x.certs.CA, "--resolve", name+":443:198.18.0.11", "https://"+name+"/headers")
		status, certs, _ := strings.Cut(w, "\n")
		if status != "200 2 0" {
			t.Errorf("%s: curl -w %q, want 200 2 0 (status, HTTP/2, verified)", name, status)
		}
		if subject := leafSubject(certs); !strings.HasSuffix(subject, "CN = "+name) && !strings.HasSuffix(subject, "CN="+name) {
			t.Errorf("%s: leaf certificate served has %q, want CN %s; curl -w %%{certs}:\n%s", name, subject, name, certs)
		}
		if s := backendSaw(t, body); s.ForwardedProto != "https" || s.Host != name || s.ForwardedFor != "198.18.0.50" {
			t.Errorf("%s: backend saw %+v; want X-Forwarded-Proto https, Host %s, X-Forwarded-For 198.18.0.50", name, s, name)
		}
	}
}

// leafSubject returns the first Subject line of curl's %{certs}: the
// certificate the server presented.
func leafSubject(certs string) string {
	for _, line := range strings.Split(certs, "\n") {
		if strings.HasPrefix(line, "Subject:") {
			return strings.TrimSpace(line)
		}
	}
	return ""
}

var (
	h2loadRequests = regexp.MustCompile(`requests: (\d+) total, \d+ started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored, (\d+) timeout`)
	h2loadStatus   = regexp.MustCompile(`status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx`)
	h2loadRate     = regexp.MustCompile(`finished in ([0-9.]+\w+), ([0-9.]+) req/s`)
)

// h2load: HTTP/2 load over TLS (ALPN h2, SNI a.example.test) and over
// cleartext with prior knowledge (h2c), 16 connections of 8 streams each:
// every request answered 2xx.
func (x *l7Lab) h2load(t *testing.T) {
	for _, tc := range []struct {
		name string
		n    int
		args []string
	}{
		{"tls", 20000, []string{"--connect-to=198.18.0.11:443", "https://a.example.test/"}},
		{"h2c", 10000, []string{"http://198.18.0.11/"}},
	} {
		args := append([]string{"-n", strconv.Itoa(tc.n), "-c", "16", "-m", "8"}, tc.args...)
		out, err := x.client.Run(t.Context(), "h2load", args...)
		if err != nil {
			t.Fatal(err)
		}
		req, st, rate := h2loadRequests.FindStringSubmatch(out), h2loadStatus.FindStringSubmatch(out), h2loadRate.FindStringSubmatch(out)
		if req == nil || st == nil || rate == nil || !strings.Contains(out, "Application protocol: h2") {
			t.Fatalf("h2load %s: output not understood (or not HTTP/2):\n%s", tc.name, out)
		}
		want := strconv.Itoa(tc.n)
		if req[1] != want || req[2] != want || req[3] != want || req[4] != "0" || req[5] != "0" || req[6] != "0" || st[1] != want {
			t.Errorf("h2load %s: %s; %s; want %d succeeded, all 2xx\n%s", tc.name, req[0], st[0], tc.n, out)
		}
		t.Logf("h2load %s -n %d -c 16 -m 8: %s req/s (finished in %s)", tc.name, tc.n, rate[2], rate[1])
	}
}
