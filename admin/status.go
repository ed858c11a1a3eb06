package admin

import "time"

// Status is the answer to the status command: what this node runs now.
type Status struct {
	Node         string     `json:"node"`
	Version      string     `json:"version"`
	PID          int        `json:"pid"`
	Started      time.Time  `json:"started"`
	Config       string     `json:"config"`
	ConfigLoaded time.Time  `json:"config_loaded"`
	Reloads      uint64     `json:"reloads"`
	ReloadErrors uint64     `json:"reload_errors"`
	Instances    []Instance `json:"instances"`
	Frontends    []Frontend `json:"frontends"`
	Pools        []Pool     `json:"pools"`
	Members      []Member   `json:"members,omitempty"` // the [cluster], this node included
	// Peers are this node's replication streams to the other members.
	Peers []SessionPeer `json:"peers,omitempty"`
}

// Member is one node of the cluster as memberlist sees it.
type Member struct {
	Name  string    `json:"name"`
	Addr  string    `json:"addr"`
	State string    `json:"state"` // alive, dead, left
	Since time.Time `json:"since"`
	Self  bool      `json:"self,omitempty"`
}

// Instance is one VRRP virtual router as this node sees it.
type Instance struct {
	Name              string    `json:"name"`
	Interface         string    `json:"interface"`
	VRID              int       `json:"vrid"`
	Version           int       `json:"version"`
	State             string    `json:"state"`
	Priority          int       `json:"priority"`
	EffectivePriority int       `json:"effective_priority"`
	Master            string    `json:"master,omitempty"`
	Since             time.Time `json:"since"`
	VIPs              []string  `json:"vips"`
	Demoted           bool      `json:"demoted,omitempty"`
	// FailingTracks names the tracks failing now; "proxy" is the local
	// proxy no longer accepting on the VIPs.
	FailingTracks []string `json:"failing_tracks,omitempty"`
	Warnings      []string `json:"warnings,omitempty"`
	// MaxTimerLate is the longest the advert loop woke after a deadline;
	// MaxAdvertGap the longest time between two adverts of the master.
	MaxTimerLate time.Duration     `json:"max_timer_late_ns"`
	MaxAdvertGap time.Duration     `json:"max_advert_gap_ns"`
	Counters     map[string]uint64 `json:"counters,omitempty"`
}

// Frontend is one listener.
type Frontend struct {
	Name        string `json:"name"`
	Bind        string `json:"bind"`
	Mode        string `json:"mode"`
	DefaultPool string `json:"default_pool"`
	State       string `json:"state"`
	Active      int64  `json:"active"`
	Total       uint64 `json:"total"`
	Refused     uint64 `json:"refused,omitempty"`
	// AccessLog counts the access log's lines (http frontends with
	// access_log): written, dropped because the log fell behind, and
	// write errors.
	AccessLog *AccessLogCounts `json:"access_log,omitempty"`
}

// AccessLogCounts are an access log's counters.
type AccessLogCounts struct {
	Lines   uint64 `json:"lines"`
	Dropped uint64 `json:"dropped"`
	Errors  uint64 `json:"errors"`
}

// Pool is one backend pool.
type Pool struct {
	Name      string    `json:"name"`
	Algorithm string    `json:"algorithm"`
	Healthy   int       `json:"healthy"` // backends passing health checks
	Backends  []Backend `json:"backends"`
}

// Backend is one backend of a pool.
type Backend struct {
	Address         string `json:"address"`
	State           string `json:"state"`
	Weight          int    `json:"weight"`
	EffectiveWeight int    `json:"effective_weight"`
	Active          int64  `json:"active"`
	Total           uint64 `json:"total"`
	BytesIn         uint64 `json:"bytes_in"`
	BytesOut        uint64 `json:"bytes_out"`

	// Health: healthy, degraded (failing, still in rotation) or unhealthy.
	Health            string        `json:"health"`
	ConsecutiveOK     int           `json:"consecutive_ok"`
	ConsecutiveFail   int           `json:"consecutive_fail"`
	LastCheck         string        `json:"last_check,omitempty"` // "HTTP 200", "connect: connection refused"
	LastLatency       time.Duration `json:"last_latency_ns,omitempty"`
	LastCheckAt       time.Time     `json:"last_check_at,omitempty"`
	Ejections         int           `json:"ejections"`
	Ejected           bool          `json:"ejected,omitempty"`
	SlowStartPermille int           `json:"slow_start_permille"`
	// HealthTransitions counts the backend's health state changes.
	HealthTransitions int `json:"health_transitions"`
	// AgentPercent is the share of its weight the backend's load agent
	// last reported (algorithm resource only).
	AgentPercent *int `json:"agent_percent,omitempty"`
}

// VersionInfo is the answer to the version command.
type VersionInfo struct {
	Version  string `json:"version"`
	Protocol int    `json:"protocol"`
	Go       string `json:"go"`
}

// Sessions is the answer to the sessions command: the replicated tables
// of this node and the cluster's replication counters.
type Sessions struct {
	// Pool is set when the tables were counted for one pool only.
	Pool     string            `json:"pool,omitempty"`
	Tables   []SessionTable    `json:"tables"`
	Peers    []SessionPeer     `json:"peers"`
	Counters map[string]uint64 `json:"counters"`
	// Lookup is set when a POOL KEY was asked for.
	Lookup *SessionEntry `json:"lookup,omitempty"`
}

// SessionTable is one replicated table.
type SessionTable struct {
	Name       string `json:"name"`
	Entries    int    `json:"entries"`
	Tombstones int    `json:"tombstones"`
	MaxEntries int    `json:"max_entries"`
	Evictions  uint64 `json:"evictions"`
	// Digest is a checksum of the live entries (key, value, version,
	// writer), independent of order: members whose tables converged show
	// the same digest. Empty when counted for one pool.
	Digest string `json:"digest,omitempty"`
}

// SessionPeer is this node's replication stream to another member.
type SessionPeer struct {
	Name        string    `json:"name"`
	Addr        string    `json:"addr"`
	State       string    `json:"state"` // connecting, full-sync, streaming
	Since       time.Time `json:"since"`
	RecordsSent uint64    `json:"records_sent"` // on the current stream
	Pending     uint64    `json:"pending"`      // records not yet applied by the peer
	// LagMs is how long the peer takes to apply this node's writes, in
	// milliseconds: measured on its last acknowledgement, or the age of the
	// oldest write it has not acknowledged when that is longer.
	LagMs   float64   `json:"lag_ms"`
	LastAck time.Time `json:"last_ack,omitzero"`
}

// SessionEntry is one looked-up entry.
type SessionEntry struct {
	Key     string `json:"key"`
	Backend string `json:"backend,omitempty"`
	Found   bool   `json:"found"`
}
