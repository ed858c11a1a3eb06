package bench

import (
	"bufio"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// WrkResult is what one `wrk --latency` run printed.
type WrkResult struct {
	Requests  int64         // "N requests in D, X read"
	Duration  time.Duration // D
	ReqPerSec float64       // "Requests/sec:"
	// Latency holds the "Latency Distribution" lines (50, 75, 90, 99 %).
	Latency map[int]time.Duration
	// Socket errors; 0 when wrk printed no "Socket errors:" line.
	ConnectErrors, ReadErrors, WriteErrors, Timeouts int64
	Non2xx                                           int64 // "Non-2xx or 3xx responses:"
}

// Errors returns every failure wrk counted: socket errors, timeouts and
// non-2xx/3xx answers.
func (r WrkResult) Errors() int64 {
	return r.ConnectErrors + r.ReadErrors + r.WriteErrors + r.Timeouts + r.Non2xx
}

// ParseWrk reads the output of `wrk --latency`. It needs the request count
// line, "Requests/sec:" and the 50 % and 99 % latency lines.
func ParseWrk(out string) (WrkResult, error) {
	r := WrkResult{Latency: map[int]time.Duration{}}
	haveCount, haveRate := false, false
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		f := strings.Fields(line)
		switch {
		case len(f) == 2 && strings.HasSuffix(f[0], "%") && !strings.Contains(line, ":"):
			p, err := strconv.Atoi(strings.TrimSuffix(f[0], "%"))
			if err != nil || p < 0 || p > 100 {
				continue // "+/- Stdev" columns and the like
			}
			d, err := parseWrkDuration(f[1])
			if err != nil {
				return WrkResult{}, fmt.Errorf("bench: wrk: latency %d%%: %w", p, err)
			}
			r.Latency[p] = d
		case len(f) >= 4 && f[1] == "requests" && f[2] == "in":
			n, err := strconv.ParseInt(f[0], 10, 64)
			if err != nil || n < 0 {
				return WrkResult{}, fmt.Errorf("bench: wrk: request count %q", f[0])
			}
			d, err := parseWrkDuration(strings.TrimSuffix(f[3], ","))
			if err != nil {
				return WrkResult{}, fmt.Errorf("bench: wrk: run time: %w", err)
			}
			r.Requests, r.Duration, haveCount = n, d, true
		case strings.HasPrefix(line, "Requests/sec:"):
			v, err := strconv.ParseFloat(strings.TrimSpace(strings.TrimPrefix(line, "Requests/sec:")), 64)
			if err != nil || v < 0 || math.IsInf(v, 0) || math.IsNaN(v) {
				return WrkResult{}, fmt.Errorf("bench: wrk: bad %q", line)
			}
			r.ReqPerSec, haveRate = v, true
		case strings.HasPrefix(line, "Socket errors:"):
			// "Socket errors: connect 0, read 0, write 0, timeout 0"
			for _, kv := range strings.Split(strings.TrimPrefix(line, "Socket errors:"), ",") {
				k, v, ok := strings.Cut(strings.TrimSpace(kv), " ")
				n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
				if !ok || err != nil || n < 0 {
					return WrkResult{}, fmt.Errorf("bench: wrk: bad %q", line)
				}
				switch k {
				case "connect":
					r.ConnectErrors = n
				case "read":
					r.ReadErrors = n
				case "write":
					r.WriteErrors = n
				case "timeout":
					r.Timeouts = n
				}
			}
		case strings.HasPrefix(line, "Non-2xx or 3xx responses:"):
			n, err := strconv.ParseInt(strings.TrimSpace(strings.TrimPrefix(line, "Non-2xx or 3xx responses:")), 10, 64)
			if err != nil || n < 0 {
				return WrkResult{}, fmt.Errorf("bench: wrk: bad %q", line)
			}
			r.Non2xx = n
		}
	}
	var missing []string
	if !haveCount {
		missing = append(missing, `"N requests in"`)
	}
	if !haveRate {
		missing = append(missing, `"Requests/sec:"`)
	}
	for _, p := range []int{50, 99} {
		if _, ok := r.Latency[p]; !ok {
			missing = append(missing, fmt.Sprintf("latency %d%%", p))
		}
	}
	if len(missing) > 0 {
		return WrkResult{}, fmt.Errorf("bench: wrk: output lacks %s (was --latency given?)", strings.Join(missing, ", "))
	}
	return r, nil
}

// parseWrkDuration reads wrk's time format (units.c): a decimal number
// followed by us, ms, s, m or h, like "812.00us" or "1.02s".
func parseWrkDuration(s string) (time.Duration, error) {
	units := []struct {
		suffix string
		unit   time.Duration
	}{{"us", time.Microsecond}, {"ms", time.Millisecond}, {"s", time.Second}, {"m", time.Minute}, {"h", time.Hour}}
	for _, u := range units {
		num, ok := strings.CutSuffix(s, u.suffix)
		if !ok {
			continue
		}
		v, err := strconv.ParseFloat(num, 64)
		if err != nil || v < 0 || math.IsNaN(v) || v*float64(u.unit) > math.MaxInt64/2 {
			break
		}
		return time.Duration(v * float64(u.unit)), nil
	}
	return 0, errors.New("bench: wrk: bad duration " + strconv.Quote(s))
}
