package httpproxy

import (
	"net/http"
	"net/http/cookiejar"
	"strings"
	"testing"
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
