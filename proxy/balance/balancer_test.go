package balance

import (
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestNewRejects(t *testing.T) {
	bs := newBackends(t, 1, 1)
	if _, err := New("fastest", bs); !errors.Is(err, ErrUnknownAlgorithm) || err.Error() != `balance: unknown algorithm "fastest"` {
		t.Errorf("New(fastest) error = %v, want ErrUnknownAlgorithm", err)
	}
	if _, err := New(RoundRobin, []*Backend{bs[0], nil}); err == nil || err.Error() != "balance: backend 1 is nil" {
		t.Errorf("New with nil backend error = %v", err)
	}
	if _, err := New(RoundRobin, []*Backend{bs[0], bs[1], bs[0]}); err == nil || err.Error() != "balance: backend 198.18.0.1:8080 listed twice" {
		t.Errorf("New with duplicate backend error = %v", err)
	}
}

func TestEveryAlgorithm(t *testing.T) {
	for _, alg := range Algorithms() {
		t.Run(alg, func(t *testing.T) {
			bs := newBackends(t, 1, 2)
			bal := mustNew(t, alg, bs)
			if bal.Algorithm() != alg {
				t.Errorf("Algorithm() = %q", bal.Algorithm())
			}
			if diff := cmp.Diff(addresses(bs), addresses(bal.Backends())); diff != "" {
				t.Errorf("Backends() (-want +got):\n%s", diff)
			}
			if b := bal.Pick(HashString("k"), Exclude{}); b == nil {
				t.Error("Pick on a healthy pool = nil")
			}
			empty := mustNew(t, alg, nil)
			if b := empty.Pick(HashString("k"), Exclude{}); b != nil {
				t.Errorf("Pick on an empty pool = %v, want nil", b)
			}
			empty.Update()
		})
	}
}

func addresses(bs []*Backend) []string {
	var s []string
	for _, b := range bs {
		s = append(s, b.Address())
	}
	return s
}
