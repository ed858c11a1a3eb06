package health

import (
	"fmt"
	"strconv"
	"strings"
)

// StatusSet is the set of HTTP status codes (100..599) an http check
// accepts, from the expect_status key.
type StatusSet struct {
	bits [10]uint64 // bit c set: status c accepted
}

// ParseStatusSet parses expect_status: "2xx", "200", "200-399" or a
// comma-separated list of those ("200,204", "2xx,301-302"), every code in
// 100..599.
func ParseStatusSet(s string) (StatusSet, error) {
	var set StatusSet
	if strings.TrimSpace(s) == "" {
		return set, fmt.Errorf("health: expect_status is empty")
	}
	for item := range strings.SplitSeq(s, ",") {
		item = strings.TrimSpace(item)
		lo, hi, err := statusRange(item)
		if err != nil {
			return StatusSet{}, fmt.Errorf("health: expect_status %q: %w", s, err)
		}
		for c := lo; c <= hi; c++ {
			set.bits[c/64] |= 1 << (c % 64)
		}
	}
	return set, nil
}

// statusRange parses one item of expect_status.
func statusRange(item string) (lo, hi int, err error) {
	if len(item) == 3 && item[1:] == "xx" && '1' <= item[0] && item[0] <= '5' {
		lo = int(item[0]-'0') * 100
		return lo, lo + 99, nil
	}
	a, b, isRange := strings.Cut(item, "-")
	if lo, err = statusCode(a); err != nil {
		return 0, 0, err
	}
	hi = lo
	if isRange {
		if hi, err = statusCode(b); err != nil {
			return 0, 0, err
		}
		if lo > hi {
			return 0, 0, fmt.Errorf("range %q runs backwards", item)
		}
	}
	return lo, hi, nil
}

func statusCode(s string) (int, error) {
	s = strings.TrimSpace(s)
	n, err := strconv.Atoi(s)
	if err != nil || n < 100 || n > 599 {
		return 0, fmt.Errorf("%q is not a status code in 100..599 or a class like \"2xx\"", s)
	}
	return n, nil
}

// Match reports whether status code c is in the set.
func (s StatusSet) Match(c int) bool {
	return c >= 100 && c <= 599 && s.bits[c/64]&(1<<(c%64)) != 0
}

// String returns the set in canonical form: whole classes as "2xx", other
// runs as "301-302" or "204", joined by commas. ParseStatusSet accepts it.
func (s StatusSet) String() string {
	var parts []string
	for c := 100; c <= 599; {
		if !s.Match(c) {
			c++
			continue
		}
		end := c
		for end+1 <= 599 && s.Match(end+1) {
			end++
		}
		for c <= end {
			switch {
			case c%100 == 0 && c+99 <= end:
				parts = append(parts, fmt.Sprintf("%dxx", c/100))
				c += 100
			default:
				// up to the end of the run or the start of the next whole class
				stop := end
				if next := (c/100 + 1) * 100; next+99 <= end {
					stop = next - 1
				}
				if stop == c {
					parts = append(parts, strconv.Itoa(c))
				} else {
					parts = append(parts, fmt.Sprintf("%d-%d", c, stop))
				}
				c = stop + 1
			}
		}
	}
	return strings.Join(parts, ",")
}
