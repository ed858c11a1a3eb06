package config

import (
	"errors"
	"strings"
	"testing"
)

// FuzzParse checks that Parse never panics and that every failure is an
// *Errors whose entries have a message and a line within the input.
func FuzzParse(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse("lbd.toml", data)
		if err == nil {
			if c == nil {
				t.Fatal("Parse returned neither a Config nor an error")
			}
			return
		}
		var errs *Errors
		if !errors.As(err, &errs) || len(*errs) == 0 {
			t.Fatalf("Parse returned %T %v, want a non-empty *Errors", err, err)
		}
		lines := strings.Split(string(data), "\n")
		for _, e := range *errs {
			if e.Msg == "" || e.Line < 0 || e.Line > len(lines) {
				t.Fatalf("bad entry %+v (input has %d lines)", e, len(lines))
			}
			// An unknown key is reported on the line that spells it.
			last := e.Key[strings.LastIndexAny(e.Key, ".]")+1:]
			if strings.HasPrefix(e.Msg, "unknown key") && isBareKey(last) && !strings.Contains(lines[e.Line-1], last) {
				t.Fatalf("%q: line %d is %q", e.Msg, e.Line, lines[e.Line-1])
			}
		}
	})
}
