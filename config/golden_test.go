package config

import (
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

var update = flag.Bool("update", false, "rewrite testdata/bad/*.want from the current output")

// TestBadConfigs loads each testdata/bad/*.toml and compares the error
// text with the .want file beside it.
func TestBadConfigs(t *testing.T) {
	files, err := filepath.Glob("testdata/bad/*.toml")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 35 {
		t.Fatalf("found %d bad configs, want at least 35", len(files))
	}
	for _, file := range files {
		name := strings.TrimSuffix(filepath.Base(file), ".toml")
		t.Run(name, func(t *testing.T) {
			_, err := Load(file)
			if err == nil {
				t.Fatal("Load succeeded, want errors")
			}
			var errs *Errors
			if !errors.As(err, &errs) {
				t.Fatalf("Load returned %T, want *Errors", err)
			}
			for _, e := range *errs {
				if e.Line == 0 {
					t.Errorf("no line for %q", e.Msg)
				}
				if e.Key == "" && !strings.HasPrefix(e.Msg, "syntax error: ") {
					t.Errorf("no key for %q", e.Msg)
				}
			}
			got := err.Error() + "\n"
			wantFile := strings.TrimSuffix(file, ".toml") + ".want"
			if *update {
				if err := os.WriteFile(wantFile, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(wantFile)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(string(want), got); diff != "" {
				t.Errorf("Load(%q) errors (-want +got):\n%s", file, diff)
			}
		})
	}
}
