package config

import (
	"fmt"
	"math"
	"strings"
)

// frontend checks one [[frontend]] and its routes.
func (v *validator) frontend(i int) {
	p := fmt.Sprintf("frontend[%d]", i)
	f := &v.c.Frontends[i]
	v.name(p+".name", f.Name)
	if v.required(p+".bind", f.Bind == "") {
		v.hostPort(p+".bind", f.Bind, false, true)
	}
	if v.required(p+".mode", f.Mode == "") {
		v.enum(p+".mode", f.Mode, "http", "tcp", "udp")
	}
	v.frontendPools(p, f)
	if f.Mode == "http" {
		v.frontendHTTP(p, f)
	} else if f.Mode != "" {
		v.onlyWith(p, []string{"route", "tls_cert", "tls_key", "tls_min_version", "request_id_header", "header_timeout", "access_log"},
			fmt.Sprintf("mode \"http\", not %q", f.Mode))
	}
	v.intRange(p+".max_connections", f.MaxConnections, 0, math.MaxInt)
	v.enum(p+".proxy_protocol", f.ProxyProtocol, "", "v1", "v2")
	if f.Mode == "udp" && f.ProxyProtocol == "v1" {
		v.e.add(p+".proxy_protocol", `"v1" cannot carry UDP; use "v2"`)
	}
}

// frontendPools checks default_pool and, for L4 frontends, that the pool
// does not pick backends by what only HTTP carries.
func (v *validator) frontendPools(p string, f *Frontend) {
	key := p + ".default_pool"
	switch {
	case f.DefaultPool != "":
		if v.poolRef(key, f.DefaultPool) && (f.Mode == "tcp" || f.Mode == "udp") {
			v.l4Pool(key, f.Mode, &v.c.Pools[v.pools[f.DefaultPool]])
		}
	case v.d.bad[key]:
	case f.Mode == "tcp" || f.Mode == "udp":
		v.e.add(key, "missing (required with mode %q)", f.Mode)
	case f.Mode == "http" && len(f.Routes) == 0:
		v.e.add(p, "needs a default_pool or at least one [[frontend.route]]")
	}
}

// l4Pool reports a pool used by a tcp or udp frontend that hashes or
// sticks on HTTP headers, cookies or the URI.
func (v *validator) l4Pool(key, mode string, pool *Pool) {
	l7 := ""
	switch {
	case (pool.Algorithm == "ip_hash" || pool.Algorithm == "maglev") && checkHashKey(pool.HashKey) == nil &&
		pool.HashKey != "source_ip":
		l7 = "hash_key " + pool.HashKey
	case pool.Sticky.Cookie != "":
		l7 = "sticky cookie " + pool.Sticky.Cookie
	case pool.Sticky.Header != "":
		l7 = "sticky header " + pool.Sticky.Header
	}
	if l7 != "" {
		v.e.add(key, "pool %q uses %s, which a %q frontend cannot see", pool.Name, l7, mode)
	}
}

func (v *validator) frontendHTTP(p string, f *Frontend) {
	switch {
	case f.TLSCert != "" && f.TLSKey == "":
		v.e.add(p+".tls_cert", "set without tls_key")
	case f.TLSKey != "" && f.TLSCert == "":
		v.e.add(p+".tls_key", "set without tls_cert")
	}
	v.enum(p+".tls_min_version", f.TLSMinVersion, "1.2", "1.3")
	if h := f.RequestIDHeader; h != "" && !v.d.bad[p+".request_id_header"] && !validToken(h) {
		v.e.add(p+".request_id_header", "%q is not a header name", h)
	}
	if l := f.AccessLog; l != "" && l != "stdout" && !v.d.bad[p+".access_log"] {
		switch {
		case strings.ContainsAny(l, "\x00\n\r"):
			v.e.add(p+".access_log", "%q is not a file name", l)
		case strings.HasSuffix(l, "/"):
			v.e.add(p+".access_log", "%q names a directory; want a file, \"stdout\" or empty", l)
		}
	}
	for j := range f.Routes {
		v.route(fmt.Sprintf("%s.route[%d]", p, j), &f.Routes[j])
	}
}

// route checks one [[frontend.route]].
func (v *validator) route(p string, r *Route) {
	if v.required(p+".pool", r.Pool == "") {
		v.poolRef(p+".pool", r.Pool)
	}
	if r.Host == "" && r.PathPrefix == "" && r.Header == "" &&
		!v.d.bad[p+".host"] && !v.d.bad[p+".path_prefix"] && !v.d.bad[p+".header"] {
		v.e.add(p, "needs at least one of host, path_prefix or header")
	}
	check := func(k, s string, f func(string) error) {
		if s != "" && !v.d.bad[p+"."+k] {
			if err := f(s); err != nil {
				v.e.add(p+"."+k, "%v", err)
			}
		}
	}
	check("host", r.Host, checkHostPattern)
	check("path_prefix", r.PathPrefix, func(s string) error {
		if !strings.HasPrefix(s, "/") {
			return fmt.Errorf("%q does not start with \"/\"", s)
		}
		return nil
	})
	check("header", r.Header, checkHeaderMatch)
}

// uniqueBind reports two frontends on one address, port and protocol
// (http and tcp are both TCP; udp on the same port is fine).
func (v *validator) uniqueBind(seen map[string]string, i int) {
	f := &v.c.Frontends[i]
	if f.Bind == "" || f.Mode == "" {
		return
	}
	proto := "tcp"
	if f.Mode == "udp" {
		proto = "udp"
	}
	k := normHostPort(f.Bind) + "/" + proto
	p := fmt.Sprintf("frontend[%d]", i)
	if first, dup := seen[k]; dup {
		v.e.add(p+".bind", "%s is already bound by %s (line %d)", k, first, v.e.lines.find(first+".bind"))
		return
	}
	seen[k] = p
}
