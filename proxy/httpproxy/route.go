package httpproxy

import (
	"bytes"
	"net/netip"
	"strings"
	"time"

	"lbd/config"
	"lbd/proxy"
	"lbd/proxy/balance"
)

// reqView is what routing, hashing and stickiness look at in a request,
// whether it came over HTTP/1.1 or HTTP/2.
type reqView interface {
	hostHeader() []byte                     // Host or :authority, maybe with a port
	pathQuery() []byte                      // origin-form target
	header(lowerName string) ([]byte, bool) // first field of that name
	cookie(name string) ([]byte, bool)      // first cookie of that name
	clientAddr() netip.Addr
}

// target is a pool as requests use it: the pool and what its configuration
// says about picking a backend for a request.
type target struct {
	pool           *proxy.Pool
	name           string
	hash           hashKey
	sticky         *sticky                        // nil: no cookie stickiness
	affinity       *affinityRule                  // nil: no source_ip or header stickiness
	h2c            map[*proxy.Backend]*h2cBackend // protocol = "h2c": the transport of each backend; nil: HTTP/1.1
	retries        int
	connectTimeout time.Duration
	readTimeout    time.Duration
}

// route is one [[frontend.route]], compiled.
type route struct {
	host     string // lower case; for a wildcard, the suffix with its dot (".example.com")
	wildcard bool
	prefix   []byte
	hdrName  string // lower case
	hdrValue []byte
	hdrHas   bool // "Name: value", not just "Name"
	tgt      *target
}

// router holds the routes of a frontend and its default pool.
type router struct {
	routes []route
	def    *target
	hasDef bool // default_pool is set, even if the pool is missing
}

// pick returns the target of the first route that matches v and its
// index, or the default and routeDefault. ok is false when nothing
// matches and there is no default (404); a nil target with ok true is a
// pool missing from the configuration (503).
func (r *router) pick(v reqView) (t *target, idx int, ok bool) {
	for i := range r.routes {
		if r.routes[i].match(v) {
			return r.routes[i].tgt, i, true
		}
	}
	if !r.hasDef {
		return nil, routeNone, false
	}
	return r.def, routeDefault, true
}

// match reports whether every matcher the route gives matches v.
func (r *route) match(v reqView) bool {
	if r.host != "" {
		h := hostOnly(v.hostHeader())
		if r.wildcard {
			// "*.example.com" matches any name below example.com, not
			// example.com itself.
			if len(h) <= len(r.host) || !eqFold(h[len(h)-len(r.host):], r.host) {
				return false
			}
		} else if !eqFold(h, r.host) {
			return false
		}
	}
	if len(r.prefix) > 0 && !bytes.HasPrefix(v.pathQuery(), r.prefix) {
		return false
	}
	if r.hdrName != "" {
		val, ok := v.header(r.hdrName)
		if !ok || (r.hdrHas && !bytes.Equal(val, r.hdrValue)) {
			return false
		}
	}
	return true
}

// hostOnly strips the port and a trailing dot from a Host value.
func hostOnly(h []byte) []byte {
	if len(h) > 0 && h[0] == '[' { // IP-literal
		if i := bytes.IndexByte(h, ']'); i > 0 {
			return h[:i+1]
		}
		return h
	}
	if i := bytes.IndexByte(h, ':'); i >= 0 {
		h = h[:i]
	}
	return bytes.TrimSuffix(h, []byte("."))
}

// newRouter compiles the routes of cfg against pools, building one target
// per pool with tgt.
func newRouter(cfg config.Frontend, tgt func(name string) *target) router {
	r := router{hasDef: cfg.DefaultPool != ""}
	if r.hasDef {
		r.def = tgt(cfg.DefaultPool)
	}
	for _, rc := range cfg.Routes {
		ro := route{tgt: tgt(rc.Pool), prefix: []byte(rc.PathPrefix)}
		if h := strings.ToLower(strings.TrimSuffix(rc.Host, ".")); h != "" {
			if strings.HasPrefix(h, "*.") {
				ro.host, ro.wildcard = h[1:], true
			} else {
				ro.host = h
			}
		}
		if rc.Header != "" {
			name, val, has := strings.Cut(rc.Header, ":")
			ro.hdrName = strings.ToLower(strings.TrimSpace(name))
			ro.hdrValue = []byte(strings.TrimSpace(val))
			ro.hdrHas = has
		}
		r.routes = append(r.routes, ro)
	}
	return r
}

// hashKey is a pool's hash_key: what ip_hash and maglev hash.
type hashKey struct {
	kind uint8
	name string // header name (lower case) or cookie name
}

const (
	hashNone uint8 = iota // the algorithm does not hash
	hashSource
	hashHeader
	hashCookie
	hashURI
)

func newHashKey(pc config.Pool) hashKey {
	if pc.Algorithm != balance.IPHash && pc.Algorithm != balance.Maglev {
		return hashKey{}
	}
	switch s := pc.HashKey; {
	case s == "uri":
		return hashKey{kind: hashURI}
	case strings.HasPrefix(s, "header:"):
		return hashKey{kind: hashHeader, name: strings.ToLower(s[len("header:"):])}
	case strings.HasPrefix(s, "cookie:"):
		return hashKey{kind: hashCookie, name: s[len("cookie:"):]}
	}
	return hashKey{kind: hashSource}
}

// key returns the request's hash key; a request without the header or
// cookie gets the zero Key, which the hash algorithms spread at random.
func (k hashKey) key(v reqView) balance.Key {
	switch k.kind {
	case hashSource:
		return balance.HashAddr(v.clientAddr())
	case hashHeader:
		if val, ok := v.header(k.name); ok {
			return balance.HashBytes(val)
		}
	case hashCookie:
		if val, ok := v.cookie(k.name); ok {
			return balance.HashBytes(val)
		}
	case hashURI:
		return balance.HashBytes(v.pathQuery())
	}
	return balance.Key{}
}

// cookieIn finds the cookie name in one Cookie field value (RFC 6265
// §5.4: "name=value" pairs separated by "; ").
func cookieIn(v []byte, name string) ([]byte, bool) {
	for len(v) > 0 {
		var pair []byte
		if i := bytes.IndexByte(v, ';'); i >= 0 {
			pair, v = v[:i], v[i+1:]
		} else {
			pair, v = v, nil
		}
		pair = bytes.TrimLeft(pair, " \t")
		if len(pair) > len(name) && pair[len(name)] == '=' && string(pair[:len(name)]) == name {
			return bytes.TrimRight(pair[len(name)+1:], " \t"), true
		}
	}
	return nil, false
}
