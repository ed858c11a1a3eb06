package httpproxy

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

func TestAppendJSONString(t *testing.T) {
	cases := []string{
		"",
		"/plain/path?q=1",
		`quote " and backslash \ and slash /`,
		"controls \x00\x01\x1f\t\r\n\x7f end",
		"invalid \xff\xfe utf-8 \xc3",
		"truncated \xe2\x82",
		"valid é ü 日本 🎉 and \ufffd itself",
		"line seps \u2028 \u2029",
		"</script><!-- & html",
	}
	for _, s := range cases {
		t.Run(s, func(t *testing.T) {
			for _, enc := range [][]byte{appendJSONString(nil, s), appendJSONString(nil, []byte(s))} {
				var got string
				if err := json.Unmarshal(enc, &got); err != nil {
					t.Fatalf("%s does not parse: %v", enc, err)
				}
				// What encoding/json makes of s: each invalid byte U+FFFD.
				std, _ := json.Marshal(s)
				var want string
				json.Unmarshal(std, &want)
				if got != want {
					t.Errorf("decoded %q, want %q", got, want)
				}
				if !utf8.Valid(enc) {
					t.Errorf("%q is not valid UTF-8", enc)
				}
				for _, c := range enc {
					if c < 0x20 {
						t.Errorf("%q has a raw control character", enc)
						break
					}
				}
			}
		})
	}
}

// readLog waits until path holds n lines and returns them decoded.
func readLog(t *testing.T, path string, n int) []map[string]any {
	t.Helper()
	var lines []string
	waitFor(t, "the access log to hold "+strconv.Itoa(n)+" lines", func() bool {
		data, err := os.ReadFile(path)
		if err != nil {
			return false
		}
		lines = strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
		return len(data) > 0 && len(lines) >= n
	})
	var out []map[string]any
	for _, l := range lines {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("line %q is not JSON: %v", l, err)
		}
		out = append(out, m)
	}
	return out
}

// TestAccessLog sends requests of every kind and reads one JSON line
// for each, with the facts a user looks for.
func TestAccessLog(t *testing.T) {
	app, api := startBackend(t, "app", nil), startBackend(t, "api", func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		io.WriteString(w, "api:"+string(body))
	})
	logPath := filepath.Join(t.TempDir(), "access.log")
	f, _ := setup(t, frontendTOML("app", `access_log = "`+logPath+`"
route = [
  {host = "api.test", pool = "api"},
  {path_prefix = "/gone/", pool = "missing"},
]`)+poolsTOML("app", "api", "missing"), app, api, &backend{addr: "127.0.0.1:1"})
	c := client(f)
	start := time.Now()
	get(t, c, "http://app.test/index.html?x=1", "X-Request-ID", "req-one")
	post(t, c, "http://api.test/v1/items", strings.NewReader("hello"))
	raw(t, f, "GET /hostile\"\\path%00 HTTP/1.1\r\nHost: app.test\r\nConnection: close\r\n\r\n")
	raw(t, f, "GET /bad HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n")
	get(t, c, "http://app.test/gone/x")
	get(t, h2cClient(f), "http://app.test/over-h2")

	lines := readLog(t, logPath, 6)
	if len(lines) != 6 {
		t.Fatalf("%d lines, want 6", len(lines))
	}
	for i, l := range lines {
		ts, err := time.Parse(time.RFC3339Nano, l["time"].(string))
		if err != nil || ts.Before(start.Add(-time.Second)) || ts.After(time.Now()) {
			t.Errorf("line %d: time %v (%v)", i, l["time"], err)
		}
		if !strings.Contains(l["time"].(string), ".") {
			t.Errorf("line %d: time %v without milliseconds", i, l["time"])
		}
		if !strings.HasPrefix(l["client"].(string), "127.0.0.1:") || l["frontend"] != "web" || l["tls"] != "" {
			t.Errorf("line %d: client %v frontend %v tls %v", i, l["client"], l["frontend"], l["tls"])
		}
		if d, ok := l["duration_ms"].(float64); !ok || d < 0 {
			t.Errorf("line %d: duration_ms %v", i, l["duration_ms"])
		}
		if id, _ := l["request_id"].(string); id == "" {
			t.Errorf("line %d: no request_id", i)
		}
		// Timings vary: check them, then compare the rest.
		for _, k := range []string{"connect_ms", "first_byte_ms"} {
			if v, ok := l[k]; ok {
				if ms, _ := v.(float64); ms < 0 || ms > l["duration_ms"].(float64) {
					t.Errorf("line %d: %s %v outside 0..duration_ms %v", i, k, v, l["duration_ms"])
				}
				l[k] = "set"
			}
		}
		for _, k := range []string{"time", "client", "duration_ms", "frontend", "tls"} {
			delete(l, k)
		}
		if b, ok := l["backend"].(string); ok && strings.HasPrefix(b, "127.0.0.1:") {
			l["backend"] = "set"
		}
		if l["request_id"] != "req-one" {
			delete(l, "request_id")
		}
	}
	want := []map[string]any{
		{"method": "GET", "host": "app.test", "path": "/index.html?x=1", "proto": "HTTP/1.1", "status": 200.0,
			"bytes_in": 0.0, "bytes_out": 3.0, "connect_ms": "set", "first_byte_ms": "set", "backend": "set",
			"pool": "app", "route": "default", "request_id": "req-one"},
		{"method": "POST", "host": "api.test", "path": "/v1/items", "proto": "HTTP/1.1", "status": 200.0,
			"bytes_in": 5.0, "bytes_out": 9.0, "connect_ms": "set", "first_byte_ms": "set", "backend": "set",
			"pool": "api", "route": "route[0]"},
		{"method": "GET", "host": "app.test", "path": `/hostile"\path%00`, "proto": "HTTP/1.1", "status": 200.0,
			"bytes_in": 0.0, "bytes_out": 3.0, "connect_ms": "set", "first_byte_ms": "set", "backend": "set",
			"pool": "app", "route": "default"},
		{"method": "", "host": "", "path": "", "proto": "HTTP/1.1", "status": 400.0,
			"bytes_in": 0.0, "bytes_out": 61.0},
		{"method": "GET", "host": "app.test", "path": "/gone/x", "proto": "HTTP/1.1", "status": 502.0,
			"bytes_in": 0.0, "bytes_out": 61.0, "pool": "missing", "route": "route[1]"},
		{"method": "GET", "host": "app.test", "path": "/over-h2", "proto": "HTTP/2.0", "status": 200.0,
			"bytes_in": 0.0, "bytes_out": 3.0, "connect_ms": "set", "first_byte_ms": "set", "backend": "set",
			"pool": "app", "route": "default"},
	}
	// A line is written when its request ends, which for the 400 (the
	// connection closes after the answer) may be after the next request's:
	// compare regardless of order.
	byRequest := func(a, b map[string]any) bool {
		return fmt.Sprint(a["path"], a["status"]) < fmt.Sprint(b["path"], b["status"])
	}
	if diff := cmp.Diff(want, lines, cmpopts.SortSlices(byRequest)); diff != "" {
		t.Errorf("access log lines (-want +got):\n%s", diff)
	}
	if s := f.AccessLogStats(); s.Lines != 6 || s.Dropped != 0 || s.Errors != 0 {
		t.Errorf("stats %+v, want 6 lines, none dropped", s)
	}
}

// TestAccessLogReopen: logrotate moves the file and sends SIGHUP; the
// reload opens the file anew and later lines go there.
func TestAccessLogReopen(t *testing.T) {
	b := startBackend(t, "app", nil)
	dir := t.TempDir()
	logPath := filepath.Join(dir, "access.log")
	f, pools := simple(t, "", b)
	cfg := f.Config()
	cfg.AccessLog = logPath
	f.Update(cfg, pools)
	c := client(f)
	get(t, c, "http://app.test/before")
	readLog(t, logPath, 1)
	if err := os.Rename(logPath, logPath+".1"); err != nil {
		t.Fatal(err)
	}
	f.Update(cfg, pools) // what SIGHUP does
	get(t, c, "http://app.test/after")
	after := readLog(t, logPath, 1)
	before := readLog(t, logPath+".1", 1)
	if len(before) != 1 || before[0]["path"] != "/before" || len(after) != 1 || after[0]["path"] != "/after" {
		t.Errorf("rotated file %v, new file %v", before, after)
	}
	fi, err := os.Stat(logPath)
	if err != nil || fi.Mode().Perm() != 0o640 {
		t.Errorf("new log file mode %v (%v), want 0640", fi.Mode().Perm(), err)
	}

	// Turned off by a reload: no more lines.
	cfg.AccessLog = ""
	f.Update(cfg, pools)
	get(t, c, "http://app.test/off")
	if s := f.AccessLogStats(); s != (AccessLogStats{}) {
		t.Errorf("stats with the log off: %+v", s)
	}
}

// blockingWriter blocks every write until released.
type blockingWriter struct {
	started chan struct{}
	release chan struct{}
	w       io.Writer
}

func (b *blockingWriter) Write(p []byte) (int, error) {
	select {
	case b.started <- struct{}{}:
	default:
	}
	<-b.release
	return b.w.Write(p)
}

// TestAccessLogFull: a writer that cannot keep up makes the log drop
// lines, counted, while adding never waits.
func TestAccessLogFull(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a.log")
	l, err := openAccessLog("web", path, discard)
	if err != nil {
		t.Fatal(err)
	}
	bw := &blockingWriter{started: make(chan struct{}, 1), release: make(chan struct{}), w: l.out}
	l.fmu.Lock()
	l.out = bw
	l.fmu.Unlock()
	var e logEntry
	e.reset(time.Now())
	e.setText([]byte("GET"), []byte("h"), []byte("/"))
	l.add(&e)
	<-bw.started // the writer holds one line and waits on the disk
	const extra = 100
	done := make(chan struct{})
	go func() {
		for i := 0; i < logRing-1+extra; i++ {
			l.add(&e)
		}
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("add blocked on a full log")
	}
	if s := l.stats(); s.Dropped != extra {
		t.Errorf("dropped %d, want %d", s.Dropped, extra)
	}
	close(bw.release)
	l.close()
	fh, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	n := 0
	for sc := bufio.NewScanner(fh); sc.Scan(); n++ {
	}
	if n != logRing {
		t.Errorf("%d lines written, want %d", n, logRing)
	}
}

// TestAccessLogLine checks one line byte for byte: escaping, the TLS
// version, a request without backend or route.
func TestAccessLogLine(t *testing.T) {
	var e logEntry
	e.reset(time.Date(2026, 3, 4, 5, 6, 7, 891_000_000, time.UTC))
	e.client = netip.MustParseAddrPort("198.18.0.9:40000")
	e.setText([]byte("GET"), []byte("h\x01st"), []byte("/p\"\xff"))
	e.setID([]byte("id"))
	e.tlsVer, e.proto, e.status, e.route = 0x0304, 20, 503, routeNone
	e.dur = 1_234_567
	line := appendLogLine(nil, &e, "fe")
	want := `{"time":"2026-03-04T05:06:07.891Z","client":"198.18.0.9:40000","method":"GET","host":"h\u0001st","path":"/p\"\ufffd","proto":"HTTP/2.0","status":503,"bytes_in":0,"bytes_out":0,"duration_ms":1.234,"request_id":"id","tls":"TLS1.3","frontend":"fe"}` + "\n"
	if diff := cmp.Diff(want, string(line)); diff != "" {
		t.Errorf("line (-want +got):\n%s", diff)
	}
	var m map[string]any
	if err := json.Unmarshal(line, &m); err != nil {
		t.Fatal(err)
	}
}

// FuzzLogString: any bytes make a JSON string that encoding/json reads
// back as it would have written them.
func FuzzLogString(f *testing.F) {
	f.Add([]byte("/path?q=\"x\"\\\x00\xff"))
	f.Fuzz(func(t *testing.T, data []byte) {
		enc := appendJSONString(nil, data)
		var got string
		if err := json.Unmarshal(enc, &got); err != nil {
			t.Fatalf("%q does not parse: %v", enc, err)
		}
		std, _ := json.Marshal(string(data))
		var want string
		json.Unmarshal(std, &want)
		if got != want {
			t.Fatalf("decoded %q, want %q", got, want)
		}
	})
}

// TestAccessLogH2C: requests to an h2c pool are logged with their
// backend timings and bodies, from HTTP/1.1 and HTTP/2 clients.
func TestAccessLogH2C(t *testing.T) {
	b := startH2CBackend(t, func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		io.WriteString(w, "echo:"+string(body))
	})
	logPath := filepath.Join(t.TempDir(), "access.log")
	f, _ := setup(t, strings.Replace(h2cConfig, `idle_timeout = "10s"`, `idle_timeout = "10s"
access_log = "`+logPath+`"`, 1)+backendsTOML(1), b)
	if resp, body := raw(t, f, "POST /one HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nConnection: close\r\n\r\nabc"); resp.StatusCode != 200 || body != "echo:abc" {
		t.Fatalf("HTTP/1.1: %d %q", resp.StatusCode, body)
	}
	h2 := h2cClient(f)
	defer h2.CloseIdleConnections()
	post(t, h2, "http://h/two", strings.NewReader("hello"))
	lines := readLog(t, logPath, 2)
	// A line is written when its request ends: the first one's may come
	// second (its connection closes after the answer).
	byPath := map[any]map[string]any{}
	for _, l := range lines {
		byPath[l["path"]] = l
	}
	for i, want := range []struct {
		path, proto string
		in, out     float64
	}{{"/one", "HTTP/1.1", 3, 8}, {"/two", "HTTP/2.0", 5, 10}} {
		l := byPath[want.path]
		_, hasConnect := l["connect_ms"]
		_, hasFirst := l["first_byte_ms"]
		if l["path"] != want.path || l["proto"] != want.proto || l["bytes_in"] != want.in || l["bytes_out"] != want.out ||
			l["status"] != 200.0 || l["pool"] != "g" || l["backend"] != b.addr || !hasConnect || !hasFirst {
			t.Errorf("line %d: %v", i, l)
		}
	}
}
