package balance

import (
	"fmt"
	"math"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// newBackends returns one Up backend per weight, at 198.18.0.x:8080.
func newBackends(t testing.TB, weights ...int) []*Backend {
	t.Helper()
	bs := make([]*Backend, len(weights))
	for i, w := range weights {
		b, err := NewBackend(BackendConfig{Address: fmt.Sprintf("198.18.%d.%d:8080", i/250, i%250+1), Weight: w})
		if err != nil {
			t.Fatal(err)
		}
		bs[i] = b
	}
	return bs
}

func mustNew(t testing.TB, algorithm string, bs []*Backend) Balancer {
	t.Helper()
	bal, err := New(algorithm, bs)
	if err != nil {
		t.Fatal(err)
	}
	return bal
}

// indexOf maps backends to their position.
func indexOf(bs []*Backend) map[*Backend]int {
	m := make(map[*Backend]int, len(bs))
	for i, b := range bs {
		m[b] = i
	}
	return m
}

// count makes n picks with keys HashString(fmt.Sprint(i)) when keyed, and
// returns how many each backend got; a nil pick fails the test.
func count(t testing.TB, bal Balancer, n int, keyed bool) []int {
	t.Helper()
	bs := bal.Backends()
	idx := indexOf(bs)
	counts := make([]int, len(bs))
	var k Key
	for i := 0; i < n; i++ {
		if keyed {
			k = Key{Hash: fmix64(uint64(i)), Has: true}
		}
		b := bal.Pick(k, Exclude{})
		if b == nil {
			t.Fatalf("pick %d: got nil", i)
		}
		counts[idx[b]]++
	}
	return counts
}

func weightShares(weights []int) []float64 {
	var sum int
	for _, w := range weights {
		sum += w
	}
	s := make([]float64, len(weights))
	for i, w := range weights {
		s[i] = float64(w) / float64(sum)
	}
	return s
}

func shares(counts []int) []float64 {
	var sum int
	for _, c := range counts {
		sum += c
	}
	s := make([]float64, len(counts))
	for i, c := range counts {
		s[i] = float64(c) / float64(sum)
	}
	return s
}

// approx compares float64s within an absolute tolerance.
func approx(tol float64) cmp.Option {
	return cmp.Comparer(func(a, b float64) bool { return math.Abs(a-b) <= tol })
}
