// Package config loads, defaults and validates lbd's TOML configuration
// (docs/examples/lbd.toml is the annotated reference).
//
// Load returns either a fully defaulted, validated *Config or an *Errors
// value that lists every problem of the file at once, each naming the file,
// the line and the key path, as `lbd.toml:42: unknown key "pool[0].helth"`.
// Defaults live in one place, defaults.toml (see DefaultsTOML).
package config

import (
	"net/netip"
	"time"
)

// Config is one lbd.toml, after defaults are applied.
type Config struct {
	Node      Node       `toml:"node"`
	Admin     Admin      `toml:"admin"`
	Cluster   Cluster    `toml:"cluster"`
	VRRP      []VRRP     `toml:"vrrp"`
	Frontends []Frontend `toml:"frontend"`
	Pools     []Pool     `toml:"pool"`

	// Path is the file the configuration was read from. Relative file
	// names inside the file (certificates, scripts, keys) are resolved
	// against its directory.
	Path string `toml:"-"`
}

// Node is the [node] section: this machine's identity and local paths.
type Node struct {
	Name        string `toml:"name"`         // unique in the cluster; default: hostname
	AdminSocket string `toml:"admin_socket"` // unix socket lbctl talks to
	StateDir    string `toml:"state_dir"`    // snapshots of replicated tables
}

// Admin is the [admin] section: the HTTP listener for /metrics and /status.
type Admin struct {
	Listen string `toml:"listen"` // empty: no HTTP admin listener
}

// Cluster is the [cluster] section: memberlist membership and replication.
type Cluster struct {
	Bind          string   `toml:"bind"`            // host:port for gossip; empty: no cluster
	Peers         []string `toml:"peers"`           // host:port of known members
	SecretKeyFile string   `toml:"secret_key_file"` // base64 AES key (16, 24 or 32 bytes)
}

// VRRP is one [[vrrp]] virtual router (RFC 5798, or RFC 3768 when Version is 2).
type VRRP struct {
	Name           string         `toml:"name"`
	Interface      string         `toml:"interface"`
	VRID           int            `toml:"vrid"`     // 1..255
	Priority       int            `toml:"priority"` // 1..255 (255: address owner)
	AdvertInterval Duration       `toml:"advert_interval"`
	Preempt        bool           `toml:"preempt"`
	PreemptDelay   Duration       `toml:"preempt_delay"`
	Version        int            `toml:"version"` // 2 or 3
	UnicastPeers   []netip.Addr   `toml:"unicast_peers"`
	VIPs           []netip.Prefix `toml:"vips"`
	GARPRepeat     int            `toml:"garp_repeat"`
	GARPInterval   Duration       `toml:"garp_interval"`
	GARPRefresh    Duration       `toml:"garp_refresh"` // 0: off
	Notify         string         `toml:"notify"`       // script run on each state change
	NotifyTimeout  Duration       `toml:"notify_timeout"`
	Tracks         []Track        `toml:"track"`
}

// Track is one [[vrrp.track]]: exactly one of Interface, Pool or Script is set.
// While it fails it lowers the instance's priority by Weight; with Weight 0 a
// failure puts the instance in FAULT.
type Track struct {
	Interface string   `toml:"interface"`
	Pool      string   `toml:"pool"`
	Script    string   `toml:"script"`
	Weight    int      `toml:"weight"`   // 0..254
	Interval  Duration `toml:"interval"` // script tracks
	Timeout   Duration `toml:"timeout"`  // script tracks
	Rise      int      `toml:"rise"`     // script tracks
	Fall      int      `toml:"fall"`     // script tracks
}

// Frontend is one [[frontend]]: a listener clients connect to.
type Frontend struct {
	Name            string   `toml:"name"`
	Bind            string   `toml:"bind"` // host:port, bound with IP_FREEBIND
	Mode            string   `toml:"mode"` // http | tcp | udp
	DefaultPool     string   `toml:"default_pool"`
	TLSCert         string   `toml:"tls_cert"`
	TLSKey          string   `toml:"tls_key"`
	TLSMinVersion   string   `toml:"tls_min_version"` // "1.2" or "1.3"
	RequestIDHeader string   `toml:"request_id_header"`
	MaxConnections  int      `toml:"max_connections"`
	IdleTimeout     Duration `toml:"idle_timeout"`
	HeaderTimeout   Duration `toml:"header_timeout"`
	ProxyProtocol   string   `toml:"proxy_protocol"` // "", "v1" or "v2"
	AccessLog       string   `toml:"access_log"`     // http: "", "stdout" or a file
	Routes          []Route  `toml:"route"`
}

// Route is one [[frontend.route]]: the first route whose every given matcher
// matches picks the pool.
type Route struct {
	Host       string `toml:"host"`        // exact, or "*.example.com"
	PathPrefix string `toml:"path_prefix"` // "/api/"
	Header     string `toml:"header"`      // "Name" (present) or "Name: value"
	Pool       string `toml:"pool"`
}

// Pool is one [[pool]]: backends and how one is picked and judged.
type Pool struct {
	Name           string    `toml:"name"`
	Algorithm      string    `toml:"algorithm"`
	HashKey        string    `toml:"hash_key"` // source_ip | header:NAME | cookie:NAME | uri
	SlowStart      Duration  `toml:"slow_start"`
	Retries        int       `toml:"retries"`
	ConnectTimeout Duration  `toml:"connect_timeout"`
	ReadTimeout    Duration  `toml:"read_timeout"`
	DrainTimeout   Duration  `toml:"drain_timeout"`
	Panic          string    `toml:"panic"`    // "fail" (503 at once) or "route_all"
	Protocol       string    `toml:"protocol"` // to backends, http frontends: "http/1.1" or "h2c"
	Sticky         Sticky    `toml:"sticky"`
	Health         Health    `toml:"health"`
	Outlier        Outlier   `toml:"outlier"`
	Backends       []Backend `toml:"backend"`
}

// Sticky is [pool.sticky]: session affinity, replicated across the cluster.
// At most one of Cookie, SourceIP and Header is set.
type Sticky struct {
	Cookie     string   `toml:"cookie"`
	SourceIP   bool     `toml:"source_ip"`
	Header     string   `toml:"header"`
	TTL        Duration `toml:"ttl"`
	MaxEntries int      `toml:"max_entries"`
}

// Health is [pool.health]: active checks.
type Health struct {
	Type         string   `toml:"type"` // http | tcp | tls | none
	Method       string   `toml:"method"`
	Path         string   `toml:"path"`
	Host         string   `toml:"host"`
	Interval     Duration `toml:"interval"`
	Timeout      Duration `toml:"timeout"`
	Fall         int      `toml:"fall"`
	Rise         int      `toml:"rise"`
	ExpectStatus string   `toml:"expect_status"` // "2xx", "200-399", "200,204"
	ExpectBody   string   `toml:"expect_body"`   // substring; empty: any
}

// Outlier is [pool.outlier]: passive ejection judged from real traffic.
type Outlier struct {
	ConsecutiveErrors  int      `toml:"consecutive_errors"` // 0: off
	EjectionTime       Duration `toml:"ejection_time"`
	MaxEjectionTime    Duration `toml:"max_ejection_time"`
	MaxEjectionPercent int      `toml:"max_ejection_percent"`
}

// Backend is one [[pool.backend]].
type Backend struct {
	Address        string `toml:"address"` // host:port
	Weight         int    `toml:"weight"`  // 0..256; 0 takes no new traffic
	MaxConnections int    `toml:"max_connections"`
	AgentPort      int    `toml:"agent_port"` // resource algorithm: load agent port
}

// Duration is a time.Duration written as a Go duration string ("100ms").
type Duration time.Duration

// D returns d as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// String formats d as Go does ("1m30s").
func (d Duration) String() string { return time.Duration(d).String() }
