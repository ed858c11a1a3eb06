package httpproxy

import (
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"

	"lbd/config"
	"lbd/proxy/balance"
)

// fakeView is a reqView for unit tests.
type fakeView struct {
	host, path string
	hdr        map[string]string
	cookies    map[string]string
	addr       netip.Addr
}

func (v fakeView) hostHeader() []byte { return []byte(v.host) }
func (v fakeView) pathQuery() []byte  { return []byte(v.path) }
func (v fakeView) header(n string) ([]byte, bool) {
	s, ok := v.hdr[n]
	return []byte(s), ok
}
func (v fakeView) cookie(n string) ([]byte, bool) {
	s, ok := v.cookies[n]
	return []byte(s), ok
}
func (v fakeView) clientAddr() netip.Addr { return v.addr }

func TestHashKeys(t *testing.T) {
	v := fakeView{host: "h", path: "/a?b", hdr: map[string]string{"x-user": "alice"},
		cookies: map[string]string{"sid": "s1"}, addr: netip.MustParseAddr("198.18.0.7")}
	tests := []struct {
		algorithm, hashKey string
		want               balance.Key
	}{
		{"maglev", "source_ip", balance.HashAddr(netip.MustParseAddr("198.18.0.7"))},
		{"ip_hash", "header:X-User", balance.HashString("alice")},
		{"maglev", "header:X-Missing", balance.Key{}},
		{"maglev", "cookie:sid", balance.HashString("s1")},
		{"ip_hash", "uri", balance.HashString("/a?b")},
		{"round_robin", "uri", balance.Key{}}, // the algorithm does not hash
	}
	for _, tt := range tests {
		t.Run(tt.algorithm+" "+tt.hashKey, func(t *testing.T) {
			k := newHashKey(config.Pool{Algorithm: tt.algorithm, HashKey: tt.hashKey})
			if diff := cmp.Diff(tt.want, k.key(v)); diff != "" {
				t.Errorf("(-want +got)\n%s", diff)
			}
		})
	}
}

func TestCookieIn(t *testing.T) {
	tests := []struct {
		value, name, want string
		ok                bool
	}{
		{"a=1; LB=tok; b=2", "LB", "tok", true},
		{"LB=tok", "LB", "tok", true},
		{"XLB=1; LB=2", "LB", "2", true},
		{"LBX=1", "LB", "", false},
		{"lb=1", "LB", "", false},
		{"", "LB", "", false},
	}
	for _, tt := range tests {
		got, ok := cookieIn([]byte(tt.value), tt.name)
		if string(got) != tt.want || ok != tt.ok {
			t.Errorf("cookieIn(%q, %q) = %q, %v; want %q, %v", tt.value, tt.name, got, ok, tt.want, tt.ok)
		}
	}
}
