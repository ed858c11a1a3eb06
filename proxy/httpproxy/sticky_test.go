package httpproxy

import (
	"net/http"
	"net/http/cookiejar"
	"net/netip"
	"strings"
	"testing"
	"time"

	"lbd/proxy"
)

func TestStickyCookie(t *testing.T) {
	b1, b2 := startBackend(t, "one", nil), startBackend(t, "two", nil)
	f, pools := simple(t, `
  [pool.sticky]
  cookie = "LBSRV"
  ttl = "1h"`, b1, b2)
	jar, _ := cookiejar.New(nil)
	c := client(f)
	c.Jar = jar

	resp, first := get(t, c, "http://app.test/")
	cookie := resp.Header.Get("Set-Cookie")
	if !strings.HasPrefix(cookie, "LBSRV=") || !strings.Contains(cookie, "HttpOnly") {
		t.Fatalf("Set-Cookie %q", cookie)
	}
	token := strings.TrimPrefix(strings.Split(cookie, ";")[0], "LBSRV=")
	for _, b := range []*backend{b1, b2} {
		_, port, _ := strings.Cut(b.addr, ":")
		if strings.Contains(token, port) || strings.Contains(token, "127.0.0.1") {
			t.Fatalf("token %q reveals a backend address", token)
		}
	}
	// Round robin would alternate; the cookie keeps the client put.
	for i := 0; i < 6; i++ {
		resp, body := get(t, c, "http://app.test/")
		if body != first {
			t.Fatalf("request %d went to %s, the cookie names %s", i, body, first)
		}
		if sc := resp.Header.Get("Set-Cookie"); sc != "" {
			t.Errorf("cookie set again while honoured: %q", sc)
		}
	}
	// Another client, without the cookie, may go elsewhere; with a copy
	// of it, it goes to the same backend.
	c2 := client(f)
	if _, body := get(t, c2, "http://app.test/", "Cookie", "other=1; LBSRV="+token); body != first {
		t.Errorf("copied cookie went to %s, want %s", body, first)
	}

	// The backend goes down: the request goes to the other one, and the
	// cookie is rewritten to name it.
	gone, other := b1, "two"
	if first == "two" {
		gone, other = b2, "one"
	}
	gone.stop()
	resp, body := get(t, c, "http://app.test/")
	if resp.StatusCode != 200 || body != other {
		t.Fatalf("after %s stopped: %d %q", first, resp.StatusCode, body)
	}
	sc := resp.Header.Get("Set-Cookie")
	if !strings.HasPrefix(sc, "LBSRV=") || strings.Contains(sc, token) {
		t.Fatalf("cookie not rewritten: %q", sc)
	}
	for i := 0; i < 4; i++ {
		if _, body := get(t, c, "http://app.test/"); body != other {
			t.Fatalf("after the rewrite, request %d went to %s", i, body)
		}
	}
	_ = pools
}

// TestStickyCookieFromAnotherNode: a token this node did not issue, but
// finds in the replicated Affinity table, is honoured.
func TestStickyCookieFromAnotherNode(t *testing.T) {
	b1, b2 := startBackend(t, "one", nil), startBackend(t, "two", nil)
	f, _ := simple(t, `
  [pool.sticky]
  cookie = "LBSRV"`, b1, b2)
	f.aff.Store("http-cookie/app/tokenFromNodeB", b2.addr, 3600e9)
	c := client(f)
	for i := 0; i < 4; i++ {
		resp, body := get(t, c, "http://app.test/", "Cookie", "LBSRV=tokenFromNodeB")
		if body != "two" || resp.Header.Get("Set-Cookie") != "" {
			t.Fatalf("request %d: %q, Set-Cookie %q", i, body, resp.Header.Get("Set-Cookie"))
		}
	}
	// An unknown token is replaced.
	resp, _ := get(t, c, "http://app.test/", "Cookie", "LBSRV=forged")
	if !strings.HasPrefix(resp.Header.Get("Set-Cookie"), "LBSRV=") {
		t.Errorf("forged token kept: Set-Cookie %q", resp.Header.Get("Set-Cookie"))
	}
	_ = http.StatusOK
}

// TestStickySourceIP: [pool.sticky] source_ip = true on an http pool
// keeps a client address on one backend across connections, through the
// Affinity table sync replicates (keyed as tcp frontends key it).
func TestStickySourceIP(t *testing.T) {
	b1, b2 := startBackend(t, "one", nil), startBackend(t, "two", nil)
	f, _ := simple(t, `
  [pool.sticky]
  source_ip = true`, b1, b2)
	key := proxy.SourceIPKey("app", netip.MustParseAddr("127.0.0.1"))
	var first string
	for i := 0; i < 6; i++ {
		c := client(f) // a new connection each time
		_, body := get(t, c, "http://app.test/")
		c.CloseIdleConnections()
		if i == 0 {
			first = body
		} else if body != first {
			t.Fatalf("request %d went to %s, the first to %s", i, body, first)
		}
	}
	addr, ok := f.aff.Lookup(key)
	byName := map[string]*backend{"one": b1, "two": b2}
	if !ok || addr != byName[first].addr {
		t.Fatalf("Affinity[%s] = %q %v, want %s", key, addr, ok, byName[first].addr)
	}
	// HTTP/2 requests from the same address stick too.
	h2 := h2cClient(f)
	defer h2.CloseIdleConnections()
	if _, body := get(t, h2, "http://app.test/"); body != first {
		t.Errorf("HTTP/2 request went to %s, want %s", body, first)
	}
	// An entry written by another node (sync) is honoured.
	other := "two"
	if first == "two" {
		other = "one"
	}
	f.aff.Store(key, byName[other].addr, time.Hour)
	if _, body := get(t, client(f), "http://app.test/"); body != other {
		t.Fatalf("after the table moved the client: %s, want %s", body, other)
	}
	// The backend goes away: the client moves, and the table follows.
	byName[other].stop()
	if _, body := get(t, client(f), "http://app.test/"); body != first {
		t.Fatalf("with %s down: %s", other, body)
	}
	if addr, _ := f.aff.Lookup(key); addr != byName[first].addr {
		t.Errorf("table not rewritten: %s", addr)
	}
}

// TestStickyHeader: [pool.sticky] header = NAME pins each value of the
// header to a backend; requests without it are balanced as usual.
func TestStickyHeader(t *testing.T) {
	b1, b2 := startBackend(t, "one", nil), startBackend(t, "two", nil)
	f, _ := simple(t, `
  [pool.sticky]
  header = "X-Session"`, b1, b2)
	c := client(f)
	got := map[string]map[string]int{}
	for i := 0; i < 12; i++ {
		var hdr []string
		who := []string{"alice", "bob", ""}[i%3]
		if who != "" {
			hdr = []string{"X-Session", who}
		}
		_, body := get(t, c, "http://app.test/", hdr...)
		if got[who] == nil {
			got[who] = map[string]int{}
		}
		got[who][body]++
	}
	for _, who := range []string{"alice", "bob"} {
		if len(got[who]) != 1 {
			t.Errorf("%s went to %v, want one backend", who, got[who])
		}
	}
	if len(got[""]) != 2 {
		t.Errorf("requests without the header went to %v, want both backends", got[""])
	}
	for body := range got["alice"] {
		key := HeaderAffinityKey("app", []byte("alice"))
		if addr, ok := f.aff.Lookup(key); !ok || strings.Contains(key, "alice") ||
			(body == "one" && addr != b1.addr) || (body == "two" && addr != b2.addr) {
			t.Errorf("Affinity[%s] = %q %v for alice on %s", key, addr, ok, body)
		}
	}
}
