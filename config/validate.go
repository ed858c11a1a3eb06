package config

import (
	"fmt"
	"math"
	"path/filepath"
	"slices"
	"strings"
)

// validator checks a decoded Config, adding every problem to e. Keys whose
// value could not be decoded (d.bad) are not checked again, so one mistake
// gives one message.
type validator struct {
	c     *Config
	d     *decoder
	e     *errList
	pools map[string]int // pool name -> index
	// poolsKnown is false when some pool's name could not be decoded; then
	// references to pools are not checked.
	poolsKnown bool
}

func validate(c *Config, d *decoder, e *errList) {
	v := &validator{c: c, d: d, e: e, pools: map[string]int{}, poolsKnown: true}
	for i, p := range c.Pools {
		if d.bad[fmt.Sprintf("pool[%d].name", i)] {
			v.poolsKnown = false
		}
		if _, dup := v.pools[p.Name]; !dup && p.Name != "" {
			v.pools[p.Name] = i
		}
	}
	v.node()
	v.cluster()
	names := map[string]string{}
	for i := range c.VRRP {
		v.vrrp(i)
		v.uniqueName(names, fmt.Sprintf("vrrp[%d]", i), c.VRRP[i].Name)
	}
	v.vrids()
	v.vips()
	clear(names)
	binds := map[string]string{}
	for i := range c.Frontends {
		v.frontend(i)
		v.uniqueName(names, fmt.Sprintf("frontend[%d]", i), c.Frontends[i].Name)
		v.uniqueBind(binds, i)
	}
	clear(names)
	for i := range c.Pools {
		v.pool(i)
		v.uniqueName(names, fmt.Sprintf("pool[%d]", i), c.Pools[i].Name)
	}
}

func (v *validator) node() {
	n := &v.c.Node
	if !v.d.bad["node.name"] {
		if n.Name == "" {
			v.e.add("node.name", "missing, and the hostname is unknown")
		} else if !validName(n.Name) {
			v.e.add("node.name", "%q is not a valid name (letters, digits, \"_\", \"-\" and \".\" only)", n.Name)
		}
	}
	v.absPath("node.admin_socket", n.AdminSocket)
	v.absPath("node.state_dir", n.StateDir)
	if l := v.c.Admin.Listen; l != "" && !v.d.bad["admin.listen"] {
		if _, err := splitHostPort(l, false); err != nil {
			v.e.add("admin.listen", "%v", err)
		}
	}
}

func (v *validator) cluster() {
	c := &v.c.Cluster
	if c.Bind == "" {
		if len(c.Peers) > 0 {
			v.e.add("cluster.peers", "set, but cluster.bind is empty (clustering is off)")
		}
		if c.SecretKeyFile != "" {
			v.e.add("cluster.secret_key_file", "set, but cluster.bind is empty (clustering is off)")
		}
		return
	}
	if !v.d.bad["cluster.bind"] {
		v.hostPort("cluster.bind", c.Bind, true, true)
	}
	for i, p := range c.Peers {
		v.hostPort(indexKey("cluster.peers", i), p, true, false)
	}
}

func (v *validator) absPath(key, p string) {
	if v.d.bad[key] {
		return
	}
	if p == "" {
		v.e.add(key, "must not be empty")
	} else if !filepath.IsAbs(p) {
		v.e.add(key, "%q is not an absolute path", p)
	}
}

// hostPort checks host:port; needIP requires an IP address as host.
func (v *validator) hostPort(key, s string, needHost, needIP bool) {
	host, err := splitHostPort(s, needHost)
	switch {
	case err != nil:
		v.e.add(key, "%v", err)
	case needIP && host != "" && !isIP(host):
		v.e.add(key, "%q: host must be an IP address", s)
	}
}

// required reports a missing or empty key and returns whether the value
// can be checked further.
func (v *validator) required(key string, empty bool) bool {
	switch {
	case v.d.bad[key]:
		return false
	case !v.d.defined[key]:
		v.e.add(key, "missing (required)")
		return false
	case empty:
		v.e.add(key, "must not be empty")
		return false
	}
	return true
}

// name checks a required name of a [[vrrp]], [[frontend]] or [[pool]].
func (v *validator) name(key, s string) {
	if v.required(key, s == "") && !validName(s) {
		v.e.add(key, "%q is not a valid name (letters, digits, \"_\", \"-\" and \".\" only)", s)
	}
}

func (v *validator) uniqueName(seen map[string]string, elem, name string) {
	key := elem + ".name"
	if name == "" || v.d.bad[key] {
		return
	}
	if first, dup := seen[name]; dup {
		v.e.add(key, "%q is already the name of %s (line %d)", name, first, v.e.lines.find(first+".name"))
		return
	}
	seen[name] = elem
}

// intRange checks lo <= n <= hi; hi == math.MaxInt means no upper bound.
func (v *validator) intRange(key string, n, lo, hi int) {
	if v.d.bad[key] || lo <= n && n <= hi {
		return
	}
	if hi == math.MaxInt {
		v.e.add(key, "%d is out of range (must be at least %d)", n, lo)
		return
	}
	v.e.add(key, "%d is out of range %d..%d", n, lo, hi)
}

func (v *validator) enum(key, s string, allowed ...string) {
	if v.d.bad[key] || slices.Contains(allowed, s) {
		return
	}
	v.e.add(key, "%q is not %s", s, list(allowed...))
}

func (v *validator) positive(key string, d Duration) {
	if !v.d.bad[key] && d <= 0 {
		v.e.add(key, "%q is not positive", v.spell(key, d))
	}
}

// spell returns a duration as the file writes it ("300s"), or as Go
// formats it when it is a default.
func (v *validator) spell(key string, d Duration) string {
	if s, ok := v.d.raw[key]; ok {
		return s
	}
	if s, ok := v.d.defRaw[stripIndexes(key)]; ok {
		return s
	}
	return d.String()
}

// onlyWith reports keys that are set but unused in this configuration,
// such as tls_cert on a tcp frontend: "only used with mode "http", not "tcp"".
func (v *validator) onlyWith(elem string, keys []string, what string) {
	for _, k := range keys {
		if key := elem + "." + k; v.d.defined[key] && !v.d.bad[key] {
			v.e.add(key, "only used with %s", what)
		}
	}
}

// poolRef checks that a pool name refers to a [[pool]].
func (v *validator) poolRef(key, name string) bool {
	if !v.poolsKnown || v.d.bad[key] {
		return false
	}
	if _, ok := v.pools[name]; !ok {
		v.e.add(key, "no [[pool]] is named %q", name)
		return false
	}
	return true
}

func validName(s string) bool {
	return s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-.") == ""
}
