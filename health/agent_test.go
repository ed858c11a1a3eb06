package health

import (
	"fmt"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"lbd/config"
	"lbd/proxy/balance"
)

func TestParseAgentReply(t *testing.T) {
	type res struct {
		Percent int
		Word    string
		Err     bool
	}
	for line, want := range map[string]res{
		"75%":             {75, "", false},
		"75%\r":           {75, "", false},
		"up":              {-1, "up", false},
		"up 80%":          {80, "up", false},
		"50% drain":       {50, "drain", false},
		"DOWN":            {-1, "down", false},
		"ready,100%":      {100, "ready", false},
		"250%":            {100, "", false},
		"maint\t0%":       {0, "maint", false},
		"0% # overloaded": {0, "", false},
		"":                {-1, "", true},
		"hello":           {-1, "", true},
		"-5%":             {-1, "", true},
		"abc%":            {-1, "", true},
	} {
		p, w, err := parseAgentReply(line)
		if diff := cmp.Diff(want, res{p, w, err != nil}); diff != "" {
			t.Errorf("parseAgentReply(%q) (-want +got):\n%s", line, diff)
		}
	}
}

// agentServer answers every connection with the current reply.
func agentServer(t *testing.T) (port int, reply *atomic.Value) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	reply = &atomic.Value{}
	reply.Store("100%\n")
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			fmt.Fprint(c, reply.Load())
			c.Close()
		}
	}()
	return ln.Addr().(*net.TCPAddr).Port, reply
}

// TestAgentSetsShare: a backend's load agent moves its share of the
// resource algorithm: a percentage, drain (0 %), up again (the last
// percentage).
func TestAgentSetsShare(t *testing.T) {
	port, reply := agentServer(t)
	cfg := testConfig()
	cfg.Health.Type = "none"
	cfg.Algorithm = balance.Resource
	cfg.Backends = []config.Backend{
		{Address: "127.0.0.1:1001", Weight: 1, AgentPort: port},
		{Address: "127.0.0.1:1002", Weight: 1}, // no agent: always 100 %
	}
	var bs []*balance.Backend
	for _, bc := range cfg.Backends {
		b, err := balance.NewBackend(balance.BackendConfig{Address: bc.Address, Weight: bc.Weight})
		if err != nil {
			t.Fatal(err)
		}
		bs = append(bs, b)
	}
	p, err := NewPool(cfg, bs, nil)
	if err != nil {
		t.Fatal(err)
	}
	p.agentEvery = 20 * time.Millisecond
	p.Start()
	defer p.Close()
	expect := func(want int) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for bs[0].AgentPercent() != want {
			if time.Now().After(deadline) {
				t.Fatalf("agent share %d, want %d", bs[0].AgentPercent(), want)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	for _, step := range []struct {
		reply string
		want  int
	}{
		{"25%\n", 25},
		{"drain\n", 0},
		{"up\n", 25},
		{"75% maint\n", 0},
		{"ready", 75}, // no newline: the agent closes
	} {
		reply.Store(step.reply)
		expect(step.want)
	}
	if got := bs[1].AgentPercent(); got != 100 {
		t.Errorf("backend without an agent at %d %%", got)
	}
}
