package balance

import (
	"errors"
	"fmt"
)

// Algorithm names, as written in the [[pool]] algorithm key.
const (
	RoundRobin         = "round_robin"
	WeightedRoundRobin = "weighted_round_robin"
	LeastConn          = "least_conn"
	LeastTime          = "least_time"
	Random             = "random"
	TwoChoices         = "two_choices"
	IPHash             = "ip_hash"
	Maglev             = "maglev"
	Resource           = "resource"
)

// ErrUnknownAlgorithm is returned by New for a name not in Algorithms.
var ErrUnknownAlgorithm = errors.New("unknown algorithm")

// Algorithms returns the names New accepts, for config validation.
func Algorithms() []string {
	return []string{RoundRobin, WeightedRoundRobin, LeastConn, LeastTime,
		Random, TwoChoices, IPHash, Maglev, Resource}
}

// Balancer picks backends for one pool. All methods are safe for concurrent
// use.
type Balancer interface {
	// Pick returns the backend for a request with hash key k, skipping the
	// backends in ex, or nil when no backend is usable and has room. Pick
	// does not count the request: the caller calls Inc (or TryInc) and Dec.
	Pick(k Key, ex Exclude) *Backend
	// Update rebuilds the balancer's tables now if a backend changed since
	// they were built. Without it the next Pick does so.
	Update()
	// Algorithm returns the algorithm name.
	Algorithm() string
	// Backends returns the pool's backends in configuration order.
	Backends() []*Backend
}

// New returns a Balancer running algorithm over backends. The backend list
// is fixed for the Balancer's life: a reload that adds or removes backends
// builds a new Balancer, and may pass the surviving *Backend values to it so
// that their counters carry over. A Backend reports its changes to the
// Balancer most recently built with it.
func New(algorithm string, backends []*Backend) (Balancer, error) {
	seen := make(map[*Backend]bool, len(backends))
	for i, b := range backends {
		if b == nil {
			return nil, fmt.Errorf("balance: backend %d is nil", i)
		}
		if seen[b] {
			return nil, fmt.Errorf("balance: backend %s listed twice", b.address)
		}
		seen[b] = true
	}
	bs := append([]*Backend(nil), backends...)
	switch algorithm {
	case RoundRobin:
		return newRoundRobin(bs), nil
	case WeightedRoundRobin:
		return newWeightedRoundRobin(bs), nil
	case LeastConn:
		return newLeastConn(bs), nil
	case LeastTime:
		return newLeastTime(bs), nil
	case Random:
		return newRandom(bs), nil
	case TwoChoices:
		return newTwoChoices(bs), nil
	case IPHash:
		return newIPHash(bs), nil
	case Maglev:
		return newMaglev(bs), nil
	case Resource:
		return newResource(bs), nil
	}
	return nil, fmt.Errorf("balance: %w %q", ErrUnknownAlgorithm, algorithm)
}
