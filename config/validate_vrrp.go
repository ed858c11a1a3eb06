package config

import (
	"fmt"
	"net/netip"
	"strings"
	"time"
)

// vrrp checks one [[vrrp]] instance (RFC 5798, RFC 3768 for version 2).
func (v *validator) vrrp(i int) {
	p := fmt.Sprintf("vrrp[%d]", i)
	r := &v.c.VRRP[i]
	v.name(p+".name", r.Name)
	v.ifName(p+".interface", r.Interface, true)
	if v.required(p+".vrid", false) {
		v.intRange(p+".vrid", r.VRID, 1, 255)
	}
	v.intRange(p+".priority", r.Priority, 1, 255)
	if !v.d.bad[p+".version"] && r.Version != 2 && r.Version != 3 {
		v.e.add(p+".version", "%d is not 2 or 3", r.Version)
	} else {
		v.advert(p, r)
	}
	if r.PreemptDelay > 0 && !r.Preempt && v.d.defined[p+".preempt_delay"] {
		v.e.add(p+".preempt_delay", "set, but preempt is false")
	}
	v.instanceAddrs(p, r)
	v.intRange(p+".garp_repeat", r.GARPRepeat, 0, 100)
	v.positive(p+".notify_timeout", r.NotifyTimeout)
	for j := range r.Tracks {
		v.track(fmt.Sprintf("%s.track[%d]", p, j), &r.Tracks[j])
	}
}

func (v *validator) ifName(key, s string, required bool) {
	if required && !v.required(key, s == "") || v.d.bad[key] {
		return
	}
	if !validIfName(s) {
		v.e.add(key, "%q is not an interface name (1 to 15 characters, no \"/\", \":\" or spaces)", s)
	}
}

// advert checks the advertisement interval: VRRPv3 counts centiseconds
// (12 bits: 10ms..40.95s), VRRPv2 whole seconds (8 bits: 1s..255s).
func (v *validator) advert(p string, r *VRRP) {
	key := p + ".advert_interval"
	if v.d.bad[key] || v.d.bad[p+".version"] {
		return
	}
	d := r.AdvertInterval.D()
	switch {
	case r.Version == 3 && d%(10*time.Millisecond) != 0:
		v.e.add(key, "%q is not a multiple of 10ms (VRRPv3 counts in centiseconds)", v.spell(key, r.AdvertInterval))
	case r.Version == 3 && (d < 10*time.Millisecond || d > 40950*time.Millisecond):
		v.e.add(key, "%q is out of range 10ms..40.95s for VRRPv3", v.spell(key, r.AdvertInterval))
	case r.Version == 2 && (d%time.Second != 0 || d < time.Second || d > 255*time.Second):
		v.e.add(key, "%q is not a whole number of seconds in 1s..255s, as VRRPv2 needs", v.spell(key, r.AdvertInterval))
	}
}

// instanceAddrs checks the VIPs and unicast peers: VRRPv2 carries IPv4
// only; one VRRPv3 instance carries one address family.
func (v *validator) instanceAddrs(p string, r *VRRP) {
	vk := p + ".vips"
	if v.required(vk, false) && len(r.VIPs) == 0 {
		v.e.add(vk, "must list at least one address")
	}
	first := ""
	fam := ""
	seen := map[netip.Addr]string{}
	check := func(key string, a netip.Addr) {
		switch {
		case !a.IsValid(): // could not be decoded, already reported
		case a.IsUnspecified() || a.IsMulticast() || a.IsLoopback():
			v.e.add(key, "%s is not a unicast address", a)
		case r.Version == 2 && family(a) == "IPv6":
			v.e.add(key, "%s is IPv6, but VRRP version 2 carries IPv4 only", a)
		case fam != "" && family(a) != fam:
			v.e.add(key, "%s is %s, but %s is %s (one instance carries one address family; add a second [[vrrp]])",
				a, family(a), strings.TrimPrefix(first, p+"."), fam)
		case seen[a] != "":
			v.e.add(key, "%s is listed twice (first as %s)", a, strings.TrimPrefix(seen[a], p+"."))
		default:
			if fam == "" {
				fam, first = family(a), key
			}
			seen[a] = key
		}
	}
	for j, pfx := range r.VIPs {
		check(indexKey(vk, j), pfx.Addr())
	}
	for j, a := range r.UnicastPeers {
		check(indexKey(p+".unicast_peers", j), a)
	}
}

// track checks one [[vrrp.track]]: exactly one of interface, pool, script.
func (v *validator) track(p string, t *Track) {
	var kinds []string
	for _, k := range []struct{ name, val string }{{"interface", t.Interface}, {"pool", t.Pool}, {"script", t.Script}} {
		if k.val != "" || v.d.bad[p+"."+k.name] {
			kinds = append(kinds, k.name)
		}
	}
	switch {
	case len(kinds) == 0:
		v.e.add(p, "needs one of interface, pool or script")
	case len(kinds) > 1:
		v.e.add(p, "sets %s; a track watches exactly one of interface, pool or script", strings.Join(kinds, " and "))
	}
	if t.Interface != "" {
		v.ifName(p+".interface", t.Interface, false)
	}
	if t.Pool != "" {
		v.poolRef(p+".pool", t.Pool)
	}
	v.intRange(p+".weight", t.Weight, 0, 254)
	if t.Script == "" {
		v.onlyWith(p, []string{"interval", "timeout", "rise", "fall"}, "script tracks")
		return
	}
	v.positive(p+".interval", t.Interval)
	v.positive(p+".timeout", t.Timeout)
	v.intRange(p+".rise", t.Rise, 1, 1000)
	v.intRange(p+".fall", t.Fall, 1, 1000)
}

// vrids reports two instances with one vrid on one interface for one
// address family: they would be the same virtual router.
func (v *validator) vrids() {
	type id struct {
		ifname string
		vrid   int
		fam    string
	}
	seen := map[id]int{}
	for i, r := range v.c.VRRP {
		if r.Interface == "" || r.VRID == 0 || len(r.VIPs) == 0 || !r.VIPs[0].IsValid() {
			continue
		}
		k := id{r.Interface, r.VRID, family(r.VIPs[0].Addr())}
		if j, dup := seen[k]; dup {
			first := fmt.Sprintf("vrrp[%d]", j)
			v.e.add(fmt.Sprintf("vrrp[%d].vrid", i), "%d is already used on %s for %s by %s (line %d)",
				r.VRID, r.Interface, k.fam, first, v.e.lines.find(first+".vrid"))
			continue
		}
		seen[k] = i
	}
}

// vips reports one address held by two instances.
func (v *validator) vips() {
	seen := map[netip.Addr]string{}
	for i, r := range v.c.VRRP {
		done := map[netip.Addr]bool{}
		for j, p := range r.VIPs {
			a := p.Addr()
			if !a.IsValid() || done[a] {
				continue
			}
			done[a] = true
			key := fmt.Sprintf("vrrp[%d].vips[%d]", i, j)
			if first, dup := seen[a]; dup {
				v.e.add(key, "%s is already listed as %s (line %d)", a, first, v.e.lines.find(first))
				continue
			}
			seen[a] = key
		}
	}
}
