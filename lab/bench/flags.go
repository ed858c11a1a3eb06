package bench

import (
	"fmt"
	"strconv"
	"strings"
)

// ParseSize reads a byte count: digits with an optional binary suffix
// B, KiB, MiB or GiB (also K, M, G), like "2GiB" or "65536".
func ParseSize(s string) (int64, error) {
	t := strings.TrimSpace(s)
	mult := int64(1)
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}, {"G", 1 << 30}, {"M", 1 << 20}, {"K", 1 << 10}, {"B", 1}} {
		if num, ok := strings.CutSuffix(t, u.suffix); ok {
			t, mult = strings.TrimSpace(num), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(t, 10, 64)
	if err != nil || n < 0 || n > (1<<62)/mult {
		return 0, fmt.Errorf("bench: size %q: want a byte count like 65536 or 2GiB", s)
	}
	return n * mult, nil
}

// ParseSizes reads a comma-separated list of sizes (see ParseSize), like
// "13,1KiB,64KiB". Each must fit in an int.
func ParseSizes(s string) ([]int, error) {
	var out []int
	for f := range strings.SplitSeq(s, ",") {
		n, err := ParseSize(f)
		if err != nil {
			return nil, err
		}
		if n > 1<<31-1 {
			return nil, fmt.Errorf("bench: size %q is too large", f)
		}
		out = append(out, int(n))
	}
	return out, nil
}

// SplitList splits a comma-separated list of names, dropping empty items.
func SplitList(s string) []string {
	var out []string
	for f := range strings.SplitSeq(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}
