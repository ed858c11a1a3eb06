package health

import (
	"context"
	"errors"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"lbd/config"
	"lbd/proxy/balance"
)

// Load agents, as HAProxy's agent-check: for algorithm = "resource", a
// backend with agent_port is asked every agentInterval, on that port of
// its address, what share of its capacity it can take. The agent answers
// one line and closes; the words HAProxy defines are understood:
//
//	75%            the backend takes 75 % of its weight
//	up, ready      back in rotation (at the last percentage given)
//	drain, maint   no new requests (0 %) until up or ready
//	down, fail, stopped
//	               the same: out of rotation until up or ready
//
// Words may be combined ("up 80%"), separated by spaces, tabs or commas;
// a state word wins over a percentage in the same reply ("50% drain" is
// 0 %). An agent that cannot be reached, or that answers nothing lbd
// understands, changes nothing: it is logged once and retried, as HAProxy
// does; the health check (if any) decides whether the backend is up.
const (
	agentInterval = 2 * time.Second // HAProxy's agent-inter default
	agentTimeout  = time.Second
	agentMaxReply = 256
)

// agent is one backend's load agent.
type agent struct {
	b       *balance.Backend
	addr    string // host:agent_port
	percent int    // the last percentage reported (100 before any)
	held    string // the state word holding the backend at 0 %, or ""
	failing bool   // the last ask failed (logged once)
}

// agents returns the load agents of cfg's backends (algorithm resource).
func agents(cfg config.Pool, backends []*balance.Backend) []*agent {
	if cfg.Algorithm != balance.Resource {
		return nil
	}
	var out []*agent
	for _, bc := range cfg.Backends {
		if bc.AgentPort <= 0 {
			continue
		}
		host, _, err := net.SplitHostPort(bc.Address)
		if err != nil {
			continue
		}
		for _, b := range backends {
			if b.Address() == bc.Address {
				out = append(out, &agent{b: b, addr: net.JoinHostPort(host, strconv.Itoa(bc.AgentPort)), percent: 100})
			}
		}
	}
	return out
}

// runAgents asks every agent each agentInterval, all at once, until Close.
func (p *Pool) runAgents() {
	defer p.wg.Done()
	every := agentInterval
	if p.agentEvery > 0 {
		every = p.agentEvery
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		var wg sync.WaitGroup
		for _, a := range p.agents {
			wg.Go(func() { p.askAgent(a) })
		}
		wg.Wait()
		select {
		case <-p.ctx.Done():
			return
		case <-t.C:
		}
	}
}

// askAgent asks one agent and applies its answer to the backend.
func (p *Pool) askAgent(a *agent) {
	ctx, cancel := context.WithTimeout(p.ctx, agentTimeout)
	defer cancel()
	reply, err := readAgent(ctx, a.addr)
	var pct int
	var word string
	if err == nil {
		pct, word, err = parseAgentReply(reply)
	}
	log := p.log.With("backend", a.b.Address(), "agent", a.addr)
	if err != nil {
		if !a.failing && p.ctx.Err() == nil {
			log.Warn("load agent failed; keeping the backend's last share", "err", err)
		}
		a.failing = true
		return
	}
	if a.failing {
		log.Info("load agent answers again")
		a.failing = false
	}
	if pct >= 0 {
		a.percent = pct
	}
	switch word {
	case "drain", "maint", "down", "fail", "stopped":
		if a.held != word {
			log.Warn("load agent takes the backend out of rotation", "said", word)
		}
		a.held = word
	case "up", "ready":
		if a.held != "" {
			log.Info("load agent puts the backend back in rotation", "said", word, "percent", a.percent)
		}
		a.held = ""
	}
	share := a.percent
	if a.held != "" {
		share = 0
	}
	if old := a.b.AgentPercent(); old != share {
		log.Debug("load agent share changed", "from", old, "to", share)
	}
	a.b.SetAgentPercent(share) // 0..100 by parseAgentReply
}

// readAgent connects to addr and reads the agent's line.
func readAgent(ctx context.Context, addr string) (string, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return "", err
	}
	defer c.Close()
	if dl, ok := ctx.Deadline(); ok {
		c.SetDeadline(dl)
	}
	buf := make([]byte, agentMaxReply)
	n := 0
	for n < len(buf) {
		m, err := c.Read(buf[n:])
		n += m
		if i := strings.IndexByte(string(buf[:n]), '\n'); i >= 0 {
			return string(buf[:i]), nil
		}
		if errors.Is(err, io.EOF) {
			return string(buf[:n]), nil
		}
		if err != nil {
			return "", err
		}
	}
	return "", errors.New("health: agent reply longer than 256 bytes without a newline")
}

// parseAgentReply reads an agent's line: the percentage it gives (-1 for
// none) and its state word ("" for none; the last one wins).
func parseAgentReply(line string) (percent int, word string, err error) {
	percent = -1
	fields := strings.FieldsFunc(strings.TrimSpace(line), func(r rune) bool {
		return r == ' ' || r == '\t' || r == ',' || r == '\r'
	})
	if len(fields) == 0 {
		return -1, "", errors.New("health: empty agent reply")
	}
	for _, f := range fields {
		f = strings.ToLower(f)
		switch {
		case strings.HasSuffix(f, "%"):
			v, err := strconv.Atoi(strings.TrimSuffix(f, "%"))
			if err != nil || v < 0 {
				return -1, "", errors.New("health: agent reply: bad percentage " + strconv.Quote(f))
			}
			percent = min(v, 100) // HAProxy caps a weight above 100 % at the configured one
		case f == "up" || f == "ready" || f == "drain" || f == "maint" || f == "down" || f == "fail" || f == "stopped":
			word = f
		default:
			// HAProxy ignores words it does not know (a "#" comment,
			// "maxconn:30"); so does lbd.
		}
	}
	if percent < 0 && word == "" {
		return -1, "", errors.New("health: agent reply " + strconv.Quote(line) + " has no percentage or state")
	}
	return percent, word, nil
}
