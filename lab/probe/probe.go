// Package probe measures failovers as MEASURING.md describes: a client
// opens a fresh TCP connection to the VIP every 10 ms (each with a 200 ms
// timeout, running concurrently), reads the one-line answer that names the
// node that served it, and logs the send time. Windows are computed from
// that log: the time from the last good answer of the old master to the
// first good answer of the new one.
package probe

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"time"
)

// Result is one probe.
type Result struct {
	Sent time.Time     `json:"sent"`
	Took time.Duration `json:"took"`
	// Who is the answer ("lb1"), or empty when the probe failed.
	Who string `json:"who,omitempty"`
	Err string `json:"err,omitempty"`
}

// OK reports whether the probe got an answer.
func (r Result) OK() bool { return r.Who != "" }

// Config says what to probe.
type Config struct {
	Target  string        // host:port
	Every   time.Duration // 10ms
	Timeout time.Duration // 200ms
	HTTP    bool          // send a GET and read the body's first line
}

// Run probes until ctx is done and writes one JSON line per probe to w, in
// send order. It returns after every probe it started has finished.
func Run(ctx context.Context, cfg Config, w io.Writer) error {
	results := make(chan chan Result, 1024)
	var wg sync.WaitGroup
	wg.Go(func() {
		enc := json.NewEncoder(w)
		for rc := range results {
			enc.Encode(<-rc)
		}
	})
	t := time.NewTicker(cfg.Every)
	defer t.Stop()
	for {
		rc := make(chan Result, 1)
		results <- rc
		go func() { rc <- once(cfg) }()
		select {
		case <-ctx.Done():
			close(results)
			wg.Wait()
			return nil
		case <-t.C:
		}
	}
}

// once runs one probe: with HTTP set, a GET whose response body names the
// node; otherwise the first line the server sends.
func once(cfg Config) Result {
	r := Result{Sent: time.Now()}
	c, err := net.DialTimeout("tcp", cfg.Target, cfg.Timeout)
	if err != nil {
		r.Err, r.Took = err.Error(), time.Since(r.Sent)
		return r
	}
	defer c.Close()
	c.SetDeadline(r.Sent.Add(cfg.Timeout))
	br := bufio.NewReader(c)
	if cfg.HTTP {
		fmt.Fprintf(c, "GET / HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n", cfg.Target)
		status, err := br.ReadString('\n')
		if err == nil && !strings.HasPrefix(status, "HTTP/1.1 200") {
			err = fmt.Errorf("status %q", strings.TrimSpace(status))
		}
		for err == nil {
			var line string
			if line, err = br.ReadString('\n'); line == "\r\n" {
				break
			}
		}
		if err != nil {
			r.Err, r.Took = err.Error(), time.Since(r.Sent)
			return r
		}
	}
	line, err := br.ReadString('\n')
	r.Took = time.Since(r.Sent)
	if err != nil {
		r.Err = err.Error()
		return r
	}
	r.Who, _, _ = strings.Cut(strings.TrimSpace(line), " ")
	if r.Who == "" {
		r.Err = "empty answer"
	}
	return r
}

// Read parses the JSON lines Run wrote.
func Read(r io.Reader) ([]Result, error) {
	var out []Result
	dec := json.NewDecoder(r)
	for {
		var res Result
		if err := dec.Decode(&res); err == io.EOF {
			return out, nil
		} else if err != nil {
			return out, fmt.Errorf("probe: reading results: %w", err)
		}
		out = append(out, res)
	}
}
