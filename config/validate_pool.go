package config

import (
	"fmt"
	"math"
	"strings"
)

var algorithms = []string{"round_robin", "weighted_round_robin", "least_conn", "least_time",
	"random", "two_choices", "ip_hash", "maglev", "resource"}

// pool checks one [[pool]] with its sections and backends.
func (v *validator) pool(i int) {
	p := fmt.Sprintf("pool[%d]", i)
	pl := &v.c.Pools[i]
	v.name(p+".name", pl.Name)
	v.enum(p+".algorithm", pl.Algorithm, algorithms...)
	if pl.Algorithm == "ip_hash" || pl.Algorithm == "maglev" {
		if err := checkHashKey(pl.HashKey); err != nil && !v.d.bad[p+".hash_key"] {
			v.e.add(p+".hash_key", "%v", err)
		}
	} else if !v.d.bad[p+".algorithm"] {
		v.onlyWith(p, []string{"hash_key"}, fmt.Sprintf("algorithm ip_hash or maglev, not %q", pl.Algorithm))
	}
	v.intRange(p+".retries", pl.Retries, 0, 10)
	v.positive(p+".connect_timeout", pl.ConnectTimeout)
	v.enum(p+".panic", pl.Panic, "fail", "route_all")
	v.enum(p+".protocol", pl.Protocol, "http/1.1", "h2c")
	v.sticky(p+".sticky", &pl.Sticky)
	v.health(p+".health", &pl.Health)
	v.outlier(p+".outlier", &pl.Outlier)
	v.backends(p, pl)
}

func (v *validator) sticky(p string, s *Sticky) {
	var set []string
	if s.Cookie != "" {
		set = append(set, "cookie")
	}
	if s.SourceIP {
		set = append(set, "source_ip")
	}
	if s.Header != "" {
		set = append(set, "header")
	}
	if len(set) > 1 {
		v.e.add(p, "sets %s; choose one of cookie, source_ip or header", strings.Join(set, " and "))
	}
	for _, k := range []struct{ name, val string }{{"cookie", s.Cookie}, {"header", s.Header}} {
		if k.val != "" && !v.d.bad[p+"."+k.name] && !validToken(k.val) {
			v.e.add(p+"."+k.name, "%q is not a valid %s name", k.val, k.name)
		}
	}
	v.positive(p+".ttl", s.TTL)
	v.intRange(p+".max_entries", s.MaxEntries, 1, math.MaxInt)
}

func (v *validator) health(p string, h *Health) {
	v.enum(p+".type", h.Type, "http", "tcp", "tls", "none")
	v.positive(p+".interval", h.Interval)
	v.positive(p+".timeout", h.Timeout)
	v.intRange(p+".fall", h.Fall, 1, 1000)
	v.intRange(p+".rise", h.Rise, 1, 1000)
	if h.Type != "http" {
		if !v.d.bad[p+".type"] {
			v.onlyWith(p, []string{"method", "path", "host", "expect_status", "expect_body"},
				fmt.Sprintf("type \"http\", not %q", h.Type))
		}
		return
	}
	if !v.d.bad[p+".method"] && !validToken(h.Method) {
		v.e.add(p+".method", "%q is not an HTTP method", h.Method)
	}
	if !v.d.bad[p+".path"] && !strings.HasPrefix(h.Path, "/") {
		v.e.add(p+".path", "%q does not start with \"/\"", h.Path)
	}
	if !v.d.bad[p+".host"] && strings.ContainsAny(h.Host, " \t\r\n/") {
		v.e.add(p+".host", "%q is not a host name", h.Host)
	}
	if !v.d.bad[p+".expect_status"] {
		if err := checkExpectStatus(h.ExpectStatus); err != nil {
			v.e.add(p+".expect_status", "%v", err)
		}
	}
}

func (v *validator) outlier(p string, o *Outlier) {
	v.intRange(p+".consecutive_errors", o.ConsecutiveErrors, 0, math.MaxInt)
	v.positive(p+".ejection_time", o.EjectionTime)
	if o.MaxEjectionTime < o.EjectionTime && !v.d.bad[p+".ejection_time"] && !v.d.bad[p+".max_ejection_time"] {
		et := v.spell(p+".ejection_time", o.EjectionTime)
		mt := v.spell(p+".max_ejection_time", o.MaxEjectionTime)
		key, msg := p+".ejection_time", fmt.Sprintf("%q is longer than max_ejection_time %q", et, mt)
		if v.d.defined[p+".max_ejection_time"] {
			key, msg = p+".max_ejection_time", fmt.Sprintf("%q is shorter than ejection_time %q", mt, et)
		}
		v.e.add(key, "%s", msg)
	}
	v.intRange(p+".max_ejection_percent", o.MaxEjectionPercent, 0, 100)
}

func (v *validator) backends(p string, pl *Pool) {
	if len(pl.Backends) == 0 && !v.d.bad[p+".backend"] {
		v.e.add(p+".backend", "missing (a pool needs at least one [[pool.backend]])")
	}
	seen := map[string]string{}
	for j := range pl.Backends {
		b := &pl.Backends[j]
		bp := fmt.Sprintf("%s.backend[%d]", p, j)
		if v.required(bp+".address", b.Address == "") {
			if _, err := splitHostPort(b.Address, true); err != nil {
				v.e.add(bp+".address", "%v", err)
			} else if first, dup := seen[normHostPort(b.Address)]; dup {
				v.e.add(bp+".address", "%q is already listed as %s (line %d)", b.Address, first, v.e.lines.find(first))
			} else {
				seen[normHostPort(b.Address)] = bp + ".address"
			}
		}
		v.intRange(bp+".weight", b.Weight, 0, 256)
		v.intRange(bp+".max_connections", b.MaxConnections, 0, math.MaxInt)
		v.agentPort(bp, pl.Algorithm, b.AgentPort)
	}
}

// agentPort: the resource algorithm asks an agent on each backend for its load.
func (v *validator) agentPort(bp, algorithm string, port int) {
	key := bp + ".agent_port"
	switch {
	case v.d.bad[key]:
	case algorithm == "resource" && port == 0:
		v.e.add(key, "missing (required with algorithm \"resource\")")
	case algorithm == "resource":
		v.intRange(key, port, 1, 65535)
	default:
		v.onlyWith(bp, []string{"agent_port"}, fmt.Sprintf("algorithm \"resource\", not %q", algorithm))
	}
}
