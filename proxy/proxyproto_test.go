package proxy

import (
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestProxyHeader(t *testing.T) {
	src4 := netip.MustParseAddrPort("198.18.0.50:40000")
	dst4 := netip.MustParseAddrPort("198.18.0.100:5432")
	src6 := netip.MustParseAddrPort("[2001:db8::50]:40000")
	dst6 := netip.MustParseAddrPort("[2001:db8::100]:443")
	for _, tc := range []struct {
		name, version string
		src, dst      netip.AddrPort
		want          string
	}{
		{"v1 ipv4", "v1", src4, dst4, "PROXY TCP4 198.18.0.50 198.18.0.100 40000 5432\r\n"},
		{"v1 ipv6", "v1", src6, dst6, "PROXY TCP6 2001:db8::50 2001:db8::100 40000 443\r\n"},
		{"v1 mixed", "v1", src6, dst4, "PROXY UNKNOWN\r\n"},
		{"v2 ipv4", "v2", src4, dst4, proxyV2Sig + "\x21\x11\x00\x0c" +
			"\xc6\x12\x00\x32" + "\xc6\x12\x00\x64" + "\x9c\x40" + "\x15\x38"},
		{"v2 mapped ipv4", "v2", netip.MustParseAddrPort("[::ffff:198.18.0.50]:40000"), dst4, proxyV2Sig + "\x21\x11\x00\x0c" +
			"\xc6\x12\x00\x32" + "\xc6\x12\x00\x64" + "\x9c\x40" + "\x15\x38"},
		{"v2 ipv6 length", "v2", src6, dst6, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := AppendProxyHeader(nil, tc.version, tc.src, tc.dst)
			if err != nil {
				t.Fatal(err)
			}
			if tc.want == "" {
				if len(got) != 16+36 {
					t.Errorf("v2 IPv6 header is %d bytes, want 52", len(got))
				}
				return
			}
			if diff := cmp.Diff(tc.want, string(got)); diff != "" {
				t.Errorf("header (-want +got):\n%s", diff)
			}
		})
	}
	if _, err := AppendProxyHeader(nil, "v3", src4, dst4); err == nil {
		t.Error("version v3 accepted")
	}
}
