package lbsync

import (
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/hashicorp/memberlist"

	"lbd/config"
)

// Config configures a Cluster. NodeName and Bind are required.
type Config struct {
	NodeName string   // unique in the cluster ([node] name)
	Bind     string   // host:port for gossip (UDP) and streams (TCP); port 0 picks one
	Peers    []string // host:port of members to join; one alive member is enough
	// SecretKey is the cluster's AES key (16, 24 or 32 bytes): memberlist
	// gossip is sealed with AES-GCM under it (memberlist Keyring), and sync
	// streams with keys derived from it. Nodes with another key, or none,
	// are refused and counted. Empty: no encryption.
	SecretKey []byte
	StateDir  string // where tables are snapshotted; empty: no snapshots

	SnapshotInterval  time.Duration // 0: 1 minute; negative: only on Close
	DefaultMaxEntries int           // bound of a table a peer creates before Table names it; 0: 1<<20
	TombstoneTTL      time.Duration // life of a deletion of a key without expiry; 0: 5 minutes
	JoinRetry         time.Duration // join Peers while alone, and members held for dead, this often; 0: 5 s

	// tune adjusts memberlist's configuration (tests shorten its timers).
	tune func(*memberlist.Config)
	// applied is called after each records message from a peer is applied
	// (benchmarks wait on it).
	applied func()
}

func (c *Config) withDefaults() {
	if c.SnapshotInterval == 0 {
		c.SnapshotInterval = time.Minute
	}
	if c.DefaultMaxEntries <= 0 {
		c.DefaultMaxEntries = 1 << 20
	}
	if c.TombstoneTTL <= 0 {
		c.TombstoneTTL = 5 * time.Minute
	}
	if c.JoinRetry <= 0 {
		c.JoinRetry = 5 * time.Second
	}
}

func (c *Config) check() error {
	switch {
	case c.NodeName == "":
		return errors.New("sync: node name is empty")
	case len(c.NodeName) > maxNameLen:
		return fmt.Errorf("sync: node name is longer than %d bytes", maxNameLen)
	case c.Bind == "":
		return errors.New("sync: bind address is empty")
	}
	switch len(c.SecretKey) {
	case 0, 16, 24, 32:
	default:
		return fmt.Errorf("sync: secret key has %d bytes; want 16, 24 or 32", len(c.SecretKey))
	}
	return nil
}

// LoadKey reads a secret_key_file: one base64 line holding a 16-, 24- or
// 32-byte AES key (make one with: head -c 32 /dev/urandom | base64).
func LoadKey(path string) ([]byte, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("sync: reading key: %w", err)
	}
	k, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(data)))
	if err != nil {
		return nil, fmt.Errorf("sync: key file %s: not base64: %w", path, err)
	}
	if len(k) != 16 && len(k) != 24 && len(k) != 32 {
		return nil, fmt.Errorf("sync: key file %s holds %d bytes; want 16, 24 or 32", path, len(k))
	}
	return k, nil
}

// FromConfig builds a Config from the [node] and [cluster] sections, reading
// the key file. ok is false when clustering is off (cluster.bind is empty).
func FromConfig(c *config.Config) (cfg Config, ok bool, err error) {
	if c.Cluster.Bind == "" {
		return Config{}, false, nil
	}
	cfg = Config{NodeName: c.Node.Name, Bind: c.Cluster.Bind, Peers: c.Cluster.Peers, StateDir: c.Node.StateDir}
	if c.Cluster.SecretKeyFile != "" {
		if cfg.SecretKey, err = LoadKey(c.Cluster.SecretKeyFile); err != nil {
			return Config{}, false, err
		}
	}
	return cfg, true, nil
}
