package health

import (
	"fmt"
	"time"
)

// State is a backend's health as judged by the active checks.
type State uint8

// Health states of the seed article's state machine.
const (
	Healthy   State = iota // passes its checks; full traffic share
	Degraded               // failing, fewer than fall in a row; still in rotation
	Unhealthy              // out of rotation, still probed; back after rise passes
)

// String returns the name lbctl shows.
func (s State) String() string {
	switch s {
	case Healthy:
		return "healthy"
	case Degraded:
		return "degraded"
	case Unhealthy:
		return "unhealthy"
	}
	return fmt.Sprintf("state(%d)", uint8(s))
}

// MarshalText gives the name in JSON status output.
func (s State) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// Outcome is what the proxy saw of one request or connection, for outlier
// detection.
type Outcome uint8

// Outcomes reported through [Pool.Report]. Every one but Success counts as
// an error.
const (
	Success      Outcome = iota
	ConnectError         // L4: the connect failed (refused, unreachable, timed out)
	Reset                // L4: the backend reset the connection
	Status5xx            // L7: a 5xx response
	Timeout              // L7: no response in time
	numOutcomes
)

// String names the outcome.
func (o Outcome) String() string {
	switch o {
	case Success:
		return "success"
	case ConnectError:
		return "connect error"
	case Reset:
		return "reset"
	case Status5xx:
		return "5xx"
	case Timeout:
		return "timeout"
	}
	return fmt.Sprintf("outcome(%d)", uint8(o))
}

// Errors counts the errors the proxy reported for one backend, by kind.
type Errors struct {
	ConnectErrors uint64
	Resets        uint64
	Status5xx     uint64
	Timeouts      uint64
}

// BackendHealth is the status of one backend, as lbctl and /status show it.
type BackendHealth struct {
	Address string
	State   State

	// Active checks; zero LastCheck: not probed yet (or type "none").
	ConsecutiveOK   int
	ConsecutiveFail int
	Transitions     int    // health state changes so far (each one is also a log line)
	LastResult      string // "HTTP 200", "connect: connection refused", "timeout after 2s"
	LastLatency     time.Duration
	LastCheck       time.Time

	// Outlier detection.
	ConsecutiveErrors int
	Errors            Errors
	Ejections         int       // so far
	Ejected           bool      //
	EjectedUntil      time.Time // zero unless Ejected

	// Weight as the balancer sees it.
	WeightPermille  int // slow-start factor, 100..1000
	EffectiveWeight int // weight × permille, 0 while out of rotation (balance.Backend.EffectiveWeight)
}
