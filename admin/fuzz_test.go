package admin

import (
	"bufio"
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
)

// FuzzAnswer feeds arbitrary request lines to the server's decoder: every
// line gets a well-formed response of our protocol version, never a panic.
func FuzzAnswer(f *testing.F) {
	for _, seed := range []string{
		`{"v":1,"cmd":"status"}`,
		`{"v":1,"cmd":"drain","args":["app","198.18.0.21:8080"]}`,
		`{"v":2,"cmd":"status"}`,
		`{"v":1,"cmd":"panic"}`,
		`{"v":1,"cmd":`,
		"\x00\xff",
		`[]`,
	} {
		f.Add([]byte(seed))
	}
	s := &Server{log: slog.New(slog.DiscardHandler)}
	h := func(_ context.Context, req Request) Response {
		if req.Cmd == "panic" {
			panic("boom")
		}
		return OKResponse(req)
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		resp := s.answer(context.Background(), line, h)
		if resp.V != Version {
			t.Fatalf("response version %d", resp.V)
		}
		if _, err := json.Marshal(resp); err != nil {
			t.Fatalf("response does not encode: %v", err)
		}
		// readLine never returns more than MaxMessage bytes or panics.
		readLine(bufio.NewReader(strings.NewReader(string(line) + "\n")))
	})
}
