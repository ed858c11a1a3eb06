package bench

import (
	"math"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// wrkOK is the output of `wrk -t1 -c64 -d1s --latency` on this machine.
const wrkOK = `Running 1s test @ http://127.0.0.1:41743/13
  1 threads and 64 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     4.63ms    8.05ms  48.29ms   90.08%
    Req/Sec    28.25k     8.18k   42.00k    70.00%
  Latency Distribution
     50%    1.45ms
     75%    3.73ms
     90%   12.52ms
     99%   42.56ms
  28108 requests in 1.00s, 3.38MB read
Requests/sec:  28090.13
Transfer/sec:      3.38MB
`

// wrkErrors has every error line wrk prints, and other units.
const wrkErrors = `Running 10s test @ http://127.0.0.1:8080/65536
  1 threads and 256 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency   812.00us    1.02s     1.99s    97.00%
    Req/Sec     7.52k     1.00k    9.00k    70.00%
  Latency Distribution
     50%  812.00us
     75%    1.20ms
     90%    1.50s
     99%    1.02m
  75190 requests in 10.01s, 4.60GB read
  Socket errors: connect 3, read 12, write 1, timeout 40
  Non-2xx or 3xx responses: 7
Requests/sec:   7511.49
Transfer/sec:    470.47MB
`

func TestParseWrk(t *testing.T) {
	tests := []struct {
		name, out string
		want      WrkResult
		errors    int64
	}{
		{"clean run", wrkOK, WrkResult{
			Requests: 28108, Duration: time.Second, ReqPerSec: 28090.13,
			Latency: map[int]time.Duration{50: 1450 * time.Microsecond, 75: 3730 * time.Microsecond, 90: 12520 * time.Microsecond, 99: 42560 * time.Microsecond},
		}, 0},
		{"errors and units", wrkErrors, WrkResult{
			Requests: 75190, Duration: 10010 * time.Millisecond, ReqPerSec: 7511.49,
			Latency:       map[int]time.Duration{50: 812 * time.Microsecond, 75: 1200 * time.Microsecond, 90: 1500 * time.Millisecond, 99: 61200 * time.Millisecond},
			ConnectErrors: 3, ReadErrors: 12, WriteErrors: 1, Timeouts: 40, Non2xx: 7,
		}, 63},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseWrk(tt.out)
			if err != nil {
				t.Fatalf("ParseWrk: %v", err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("ParseWrk (-want +got):\n%s", diff)
			}
			if got.Errors() != tt.errors {
				t.Errorf("Errors() = %d, want %d", got.Errors(), tt.errors)
			}
		})
	}
}

func TestParseWrkRefuses(t *testing.T) {
	tests := []struct{ name, out, wantErr string }{
		{"no --latency", strings.Replace(wrkOK, "     99%   42.56ms\n", "", 1), "latency 99%"},
		{"wrk failed", "unable to connect to 127.0.0.1:1 Connection refused\n", `"N requests in"`},
		{"bad unit", strings.Replace(wrkOK, "1.45ms", "1.45xs", 1), "latency 50%"},
		{"negative rate", strings.Replace(wrkOK, "28090.13", "-1", 1), "Requests/sec"},
		{"bad socket errors", strings.Replace(wrkOK, "Requests/sec", "  Socket errors: connect x\nRequests/sec", 1), "Socket errors"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseWrk(tt.out)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("ParseWrk error = %v, want one mentioning %q", err, tt.wantErr)
			}
		})
	}
}

func TestParseStatCPU(t *testing.T) {
	tests := []struct {
		name, stat string
		want       time.Duration
		wantErr    bool
	}{
		// A real line of `cat /proc/self/stat` with utime 7, stime 5.
		{"real", "17971 (head) R 17887 17887 30939 0 -1 4194304 101 0 0 0 7 5 0 0 20 0 1 0 349892 2998272 412", 120 * time.Millisecond, false},
		{"name with spaces and parens", "42 (a) b (c)) S 1 42 42 0 -1 0 0 0 0 0 250 150 3 4 20 0 8 0", 4 * time.Second, false},
		{"large", "1 (lbd) S 0 1 1 0 -1 0 0 0 0 0 123456789 1 0 0", 1234567900 * time.Millisecond, false},
		{"truncated", "1 (lbd) S 0 1 1 0 -1 0 0 0 0 0 7", 0, true},
		{"no name", "1 lbd S 0 1 1 0 -1 0 0 0 0 0 7 5", 0, true},
		{"not a number", "1 (lbd) S 0 1 1 0 -1 0 0 0 0 0 7 x", 0, true},
		{"negative", "1 (lbd) S 0 1 1 0 -1 0 0 0 0 0 -7 5", 0, true},
		{"overflow", "1 (lbd) S 0 1 1 0 -1 0 0 0 0 0 9223372036854775807 5", 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseStatCPU([]byte(tt.stat))
			if (err != nil) != tt.wantErr {
				t.Fatalf("ParseStatCPU error = %v, want error %v", err, tt.wantErr)
			}
			if got != tt.want {
				t.Errorf("ParseStatCPU = %v, want %v", got, tt.want)
			}
		})
	}
}

// TestCPUTimeCounts checks that CPUTime of this process grows while it
// burns CPU: the reader follows the kernel's accounting.
func TestCPUTimeCounts(t *testing.T) {
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("no /proc")
	}
	before, err := CPUTime(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	x := 0
	for {
		for i := range 1_000_000 {
			x += i
		}
		now, err := CPUTime(os.Getpid())
		if err != nil {
			t.Fatal(err)
		}
		if now-before >= 50*time.Millisecond {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("CPU time went from %v to %v after 20 s of busy looping (%d)", before, now, x)
		}
	}
}

func TestParseStatusRSS(t *testing.T) {
	tests := []struct {
		name, status string
		want         int64
		wantErr      bool
	}{
		{"real", "Name:\tlbd\nVmPeak:\t 1300000 kB\nVmRSS:\t   12604 kB\nRssAnon:\t    4000 kB\n", 12604 << 10, false},
		{"missing", "Name:\tkthreadd\nState:\tS (sleeping)\n", 0, true},
		{"other unit", "VmRSS:\t 12 MB\n", 0, true},
		{"garbage", "VmRSS:\t lots kB\n", 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseStatusRSS([]byte(tt.status))
			if (err != nil) != tt.wantErr {
				t.Fatalf("ParseStatusRSS error = %v, want error %v", err, tt.wantErr)
			}
			if got != tt.want {
				t.Errorf("ParseStatusRSS = %d, want %d", got, tt.want)
			}
		})
	}
}

func TestMedian(t *testing.T) {
	nan := math.NaN()
	tests := []struct {
		name string
		xs   []float64
		want float64
	}{
		{"odd", []float64{5, 1, 3}, 3},
		{"even", []float64{4, 1, 3, 2}, 2.5},
		{"one", []float64{7}, 7},
		{"NaNs ignored", []float64{nan, 9, 1, nan, 5}, 5},
		{"does not reorder its input", []float64{3, 2, 1}, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := append([]float64(nil), tt.xs...)
			if got := Median(tt.xs); got != tt.want {
				t.Errorf("Median(%v) = %v, want %v", tt.xs, got, tt.want)
			}
			if diff := cmp.Diff(in, tt.xs, cmp.Comparer(func(a, b float64) bool { return a == b || math.IsNaN(a) && math.IsNaN(b) })); diff != "" {
				t.Errorf("Median changed its input (-before +after):\n%s", diff)
			}
		})
	}
	for _, xs := range [][]float64{nil, {nan}} {
		if got := Median(xs); !math.IsNaN(got) {
			t.Errorf("Median(%v) = %v, want NaN", xs, got)
		}
	}
}

func TestParseSizes(t *testing.T) {
	tests := []struct {
		in      string
		want    []int
		wantErr bool
	}{
		{"13,64KiB", []int{13, 65536}, false},
		{"1K, 2M ,3B", []int{1024, 2 << 20, 3}, false},
		{"1GiB", []int{1 << 30}, false},
		{"8,,64", nil, true},
		{"-1", nil, true},
		{"4TiB", nil, true},
		{"2GiB", nil, true}, // more than an int32
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseSizes(tt.in)
			if (err != nil) != tt.wantErr {
				t.Fatalf("ParseSizes(%q) error = %v, want error %v", tt.in, err, tt.wantErr)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("ParseSizes(%q) (-want +got):\n%s", tt.in, diff)
			}
		})
	}
	if n, err := ParseSize("2GiB"); err != nil || n != 2<<30 {
		t.Errorf(`ParseSize("2GiB") = %d, %v; want 2147483648`, n, err)
	}
}
