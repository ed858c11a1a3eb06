package lbsync

import (
	"net/netip"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"lbd/proxy"
)

// A Table, or the typed Uses, is handed to the proxy as its affinity table.
var (
	_ proxy.Affinity = (*Table)(nil)
	_ proxy.Affinity = (*Uses)(nil)
)

func TestUsesRouteByKey(t *testing.T) {
	c, _ := localCluster(t, "lb1")
	u := c.Uses(100, 200, 300)
	keys := []string{
		CookieKey("app", "tok"),
		SourceIPKey("app", netip.MustParseAddr("::ffff:198.18.0.50")),
		FlowKey(netip.MustParseAddrPort("198.18.0.50:40000")),
		"http-header/app/c2Vzc2lvbi0x", // httpproxy.HeaderAffinityKey
	}
	for _, k := range keys {
		u.Store(k, "198.18.1.1:80", time.Hour)
	}
	got := map[string][]string{}
	for _, tb := range []*Table{u.Sticky, u.SourceIP, u.Flows} {
		got[tb.Name()] = held(tb, keys...)
	}
	want := map[string][]string{
		TableSticky:   {"http-cookie/app/tok", "http-header/app/c2Vzc2lvbi0x"},
		TableSourceIP: {"source-ip/app/198.18.0.50"},
		TableFlows:    {"198.18.0.50:40000"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("keys per table (-want +got):\n%s", diff)
	}
	u.Delete(keys[0])
	var vals []string
	for _, k := range keys {
		v, ok := u.Lookup(k)
		if !ok {
			v = "-"
		}
		vals = append(vals, v)
	}
	if diff := cmp.Diff([]string{"-", "198.18.1.1:80", "198.18.1.1:80", "198.18.1.1:80"}, vals); diff != "" {
		t.Errorf("lookups after deleting the cookie (-want +got):\n%s", diff)
	}
	if got := u.Flows.Stats().MaxEntries; got != 300 {
		t.Errorf("flows table bound %d, want 300", got)
	}
}

func TestInPool(t *testing.T) {
	for key, want := range map[string]bool{
		"http-cookie/app/tok":          true,
		"http-header/app/c2Vzc2lvbi0x": true,
		"source-ip/app/198.18.0.50":    true,
		"http-cookie/application/tok":  false,
		"source-ip/api/198.18.0.50":    false,
		"198.18.0.50:40000":            false,
		"http-cookie/app":              false,
	} {
		if got := InPool(key, "app"); got != want {
			t.Errorf("InPool(%q, app) = %v, want %v", key, got, want)
		}
	}
}

func TestSourceIPKeyMatchesProxy(t *testing.T) {
	ip := netip.MustParseAddr("::ffff:198.18.0.50")
	if a, b := SourceIPKey("app", ip), proxy.SourceIPKey("app", ip); a != b {
		t.Errorf("sync keys source IPs as %q, the proxy as %q", a, b)
	}
}
