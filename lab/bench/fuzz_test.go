package bench

import (
	"bufio"
	"strings"
	"testing"
)

func FuzzParseWrk(f *testing.F) {
	f.Add(wrkOK)
	f.Add(wrkErrors)
	f.Fuzz(func(t *testing.T, out string) {
		r, err := ParseWrk(out)
		if err != nil {
			return
		}
		if r.Requests < 0 || r.Duration < 0 || r.ReqPerSec < 0 || r.Errors() < 0 {
			t.Errorf("ParseWrk accepted negative figures: %+v", r)
		}
		for p, d := range r.Latency {
			if p < 0 || p > 100 || d < 0 {
				t.Errorf("ParseWrk accepted latency %d%% = %v", p, d)
			}
		}
	})
}

func FuzzParseStatCPU(f *testing.F) {
	f.Add([]byte("17971 (head) R 17887 17887 30939 0 -1 4194304 101 0 0 0 7 5 0 0 20 0 1 0 349892"))
	f.Add([]byte("42 (a) b (c)) S 1 42 42 0 -1 0 0 0 0 0 250 150 3 4 20 0 8 0"))
	f.Fuzz(func(t *testing.T, stat []byte) {
		if d, err := ParseStatCPU(stat); err == nil && d < 0 {
			t.Errorf("ParseStatCPU = %v, negative", d)
		}
		parseStatPPID(stat)
	})
}

func FuzzParseStatusRSS(f *testing.F) {
	f.Add([]byte("Name:\tlbd\nVmRSS:\t   12604 kB\n"))
	f.Add([]byte("VmRSS: 1 MB\n"))
	f.Fuzz(func(t *testing.T, status []byte) {
		if n, err := ParseStatusRSS(status); err == nil && n < 0 {
			t.Errorf("ParseStatusRSS = %d, negative", n)
		}
	})
}

func FuzzParseSize(f *testing.F) {
	for _, s := range []string{"13", "64KiB", "2GiB", "1M", "-1", "9223372036854775807G"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if n, err := ParseSize(s); err == nil && n < 0 {
			t.Errorf("ParseSize(%q) = %d, negative", s, n)
		}
	})
}

func FuzzReadRequest(f *testing.F) {
	f.Add("GET /13 HTTP/1.1\r\nHost: a\r\n\r\n")
	f.Add("POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello")
	f.Add("GET / HTTP/1.0\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n")
	f.Fuzz(func(t *testing.T, req string) {
		br := bufio.NewReaderSize(strings.NewReader(req), 16<<10)
		for range 4 {
			path, _, err := readRequest(br)
			if err != nil {
				return
			}
			if strings.Contains(path, "?") {
				t.Errorf("readRequest path %q keeps the query", path)
			}
		}
	})
}
