package admin

import (
	"encoding/json"
	"fmt"
)

// Version is the protocol version spoken by this build. A server answers a
// request of another version with an error naming both versions.
const Version = 1

// MaxMessage bounds one request or response line, so that a misbehaving
// peer cannot make either side buffer without limit.
const MaxMessage = 16 << 20

// Commands understood by lbd.
const (
	CmdStatus   = "status"
	CmdReload   = "reload"
	CmdVersion  = "version"
	CmdDemote   = "demote"   // [INSTANCE]: hand mastership over, stay backup
	CmdPromote  = "promote"  // [INSTANCE]: end a demote
	CmdDrain    = "drain"    // POOL BACKEND: no new connections, finish open ones
	CmdEnable   = "enable"   // POOL BACKEND: back in rotation
	CmdDisable  = "disable"  // POOL BACKEND: out of rotation
	CmdSessions = "sessions" // [POOL KEY]: replicated tables, or one entry
)

// Request is one command sent to lbd.
type Request struct {
	V    int      `json:"v"`
	Cmd  string   `json:"cmd"`
	Args []string `json:"args,omitempty"`
}

// Response is lbd's answer to one Request. When OK is false, Error says why
// and Details may carry one line per underlying problem (for example every
// validation error of a refused reload).
type Response struct {
	V       int             `json:"v"`
	OK      bool            `json:"ok"`
	Error   string          `json:"error,omitempty"`
	Details []string        `json:"details,omitempty"`
	Data    json.RawMessage `json:"data,omitempty"`
}

// OKResponse returns a successful response carrying v as its data.
func OKResponse(v any) Response {
	if v == nil {
		return Response{V: Version, OK: true}
	}
	b, err := json.Marshal(v)
	if err != nil {
		return ErrorResponse(fmt.Errorf("admin: encoding response: %w", err))
	}
	return Response{V: Version, OK: true, Data: b}
}

// ErrorResponse returns a failed response for err. An error that carries
// several problems (an Unwrap() []error, as errors.Join and config.Errors
// build) lists each in Details.
func ErrorResponse(err error, details ...string) Response {
	return Response{V: Version, Error: err.Error(), Details: details}
}

// Decode unmarshals the response's data into v.
func (r *Response) Decode(v any) error {
	if len(r.Data) == 0 {
		return fmt.Errorf("admin: response carries no data")
	}
	if err := json.Unmarshal(r.Data, v); err != nil {
		return fmt.Errorf("admin: decoding response: %w", err)
	}
	return nil
}
