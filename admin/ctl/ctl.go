// Package ctl is lbctl: the operator's command line for a running lbd,
// speaking the admin protocol over the unix socket.
package ctl

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"sort"
	"text/tabwriter"
	"time"

	"lbd/admin"
)

// command is one lbctl subcommand.
type command struct {
	name, args, help string
	run              func(c *cli, args []string) error
}

var commands = []command{
	{"status", "", "show VRRP instances, frontends, pools and backends", (*cli).status},
	{"reload", "", "reload the configuration file; prints why when lbd refuses it", (*cli).reload},
	{"demote", "[INSTANCE]", "hand mastership to a peer (make-before-break) and stay backup until promote", (*cli).demote},
	{"promote", "[INSTANCE]", "end a demote: take part in the election again", (*cli).promote},
	{"drain", "POOL BACKEND", "no new connections to BACKEND; open ones finish within drain_timeout", (*cli).drain},
	{"enable", "POOL BACKEND", "put BACKEND back in rotation", (*cli).enable},
	{"disable", "POOL BACKEND", "take BACKEND out of rotation", (*cli).disable},
	{"sessions", "[POOL [KEY]]", "replicated session tables and each peer's lag; with POOL, that pool's entries; with POOL KEY, the backend of one cookie token, client IP or UDP flow", (*cli).sessions},
	{"version", "", "print lbctl's and lbd's versions", (*cli).showVersion},
}

type cli struct {
	ctx     context.Context
	socket  string
	json    bool
	version string
	out     io.Writer
}

// errUsage reports a command line lbctl does not understand.
var errUsage = errors.New("usage")

// Run runs lbctl with args (without the program name) and returns the exit
// status: 0 on success, 1 when lbd refused or could not be reached, 2 on a
// usage error.
func Run(ctx context.Context, version string, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("lbctl", flag.ContinueOnError)
	fs.SetOutput(stderr)
	c := &cli{ctx: ctx, version: version, out: stdout}
	fs.StringVar(&c.socket, "socket", admin.DefaultSocket, "admin socket of the lbd to control")
	fs.BoolVar(&c.json, "json", false, "print JSON instead of tables")
	timeout := fs.Duration("timeout", 30*time.Second, "give up on lbd after this long")
	fs.Usage = func() { usage(fs, stderr) }
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	rest := fs.Args()
	if len(rest) == 0 {
		usage(fs, stderr)
		return 2
	}
	// Flags may also follow the command: lbctl status -json.
	name := rest[0]
	if err := fs.Parse(rest[1:]); err != nil {
		return 2
	}
	var cmd *command
	for i := range commands {
		if commands[i].name == name {
			cmd = &commands[i]
		}
	}
	if cmd == nil {
		fmt.Fprintf(stderr, "lbctl: unknown command %q\n", name)
		usage(fs, stderr)
		return 2
	}
	var cancel context.CancelFunc
	c.ctx, cancel = context.WithTimeout(ctx, *timeout)
	defer cancel()
	err := cmd.run(c, fs.Args())
	switch {
	case err == nil:
		return 0
	case errors.Is(err, errUsage):
		fmt.Fprintf(stderr, "lbctl: usage: lbctl %s %s\n", cmd.name, cmd.args)
		return 2
	default:
		fmt.Fprintf(stderr, "lbctl: %v\n", err)
		return 1
	}
}

func usage(fs *flag.FlagSet, w io.Writer) {
	fmt.Fprintln(w, "usage: lbctl [-socket PATH] [-json] COMMAND [ARGS]")
	fmt.Fprintln(w, "\ncommands:")
	for _, c := range commands {
		fmt.Fprintf(w, "  %-28s %s\n", c.name+" "+c.args, c.help)
	}
	fmt.Fprintln(w, "\nflags:")
	fs.PrintDefaults()
}

// call sends one command and turns a refusal into an error that carries
// lbd's details, one per line.
func (c *cli) call(cmd string, args ...string) (*admin.Response, error) {
	resp, err := admin.Call(c.ctx, c.socket, cmd, args...)
	if err != nil {
		return nil, err
	}
	if !resp.OK {
		msg := resp.Error
		for _, d := range resp.Details {
			msg += "\n  " + d
		}
		return nil, errors.New(msg)
	}
	return resp, nil
}

// printJSON writes the response's data indented.
func (c *cli) printJSON(resp *admin.Response) error {
	var v any
	if err := json.Unmarshal(resp.Data, &v); err != nil {
		return fmt.Errorf("malformed answer from lbd: %w", err)
	}
	enc := json.NewEncoder(c.out)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func (c *cli) status(args []string) error {
	if len(args) != 0 {
		return errUsage
	}
	return c.statusCmd(admin.CmdStatus, nil, func(st *admin.Status) { writeStatus(c.out, st, time.Now()) })
}

// statusCmd sends a command whose answer is the node's Status and prints
// it as JSON with -json, else with show.
func (c *cli) statusCmd(cmd string, args []string, show func(*admin.Status)) error {
	resp, err := c.call(cmd, args...)
	if err != nil {
		return err
	}
	if c.json {
		return c.printJSON(resp)
	}
	var st admin.Status
	if err := resp.Decode(&st); err != nil {
		return err
	}
	show(&st)
	return nil
}

func (c *cli) reload(args []string) error {
	if len(args) != 0 {
		return errUsage
	}
	return c.statusCmd(admin.CmdReload, nil, func(st *admin.Status) {
		fmt.Fprintf(c.out, "reloaded %s on %s\n", st.Config, st.Node)
	})
}

func (c *cli) showVersion(args []string) error {
	if len(args) != 0 {
		return errUsage
	}
	fmt.Fprintf(c.out, "lbctl %s\n", c.version)
	resp, err := c.call(admin.CmdVersion)
	if err != nil {
		return err
	}
	var v admin.VersionInfo
	if err := resp.Decode(&v); err != nil {
		return err
	}
	fmt.Fprintf(c.out, "lbd   %s (protocol %d, %s)\n", v.Version, v.Protocol, v.Go)
	return nil
}

func (c *cli) demote(args []string) error  { return c.instanceCmd(admin.CmdDemote, args) }
func (c *cli) promote(args []string) error { return c.instanceCmd(admin.CmdPromote, args) }

// instanceCmd sends demote or promote and prints the instances' states.
func (c *cli) instanceCmd(cmd string, args []string) error {
	if len(args) > 1 {
		return errUsage
	}
	return c.statusCmd(cmd, args, func(st *admin.Status) {
		for _, in := range st.Instances {
			if len(args) == 1 && in.Name != args[0] {
				continue
			}
			demoted := ""
			if in.Demoted {
				demoted = " (demoted)"
			}
			fmt.Fprintf(c.out, "%s: %s%s, master %s\n", in.Name, in.State, demoted, dash(in.Master))
		}
	})
}

func (c *cli) drain(args []string) error   { return c.backendCmd(admin.CmdDrain, args) }
func (c *cli) enable(args []string) error  { return c.backendCmd(admin.CmdEnable, args) }
func (c *cli) disable(args []string) error { return c.backendCmd(admin.CmdDisable, args) }

// backendCmd sends drain, enable or disable and prints the backend's state.
func (c *cli) backendCmd(cmd string, args []string) error {
	if len(args) != 2 {
		return errUsage
	}
	return c.statusCmd(cmd, args, func(st *admin.Status) {
		for _, p := range st.Pools {
			for _, b := range p.Backends {
				if p.Name == args[0] && b.Address == args[1] {
					fmt.Fprintf(c.out, "%s %s: %s, %d active connections\n", p.Name, b.Address, b.State, b.Active)
				}
			}
		}
	})
}

func (c *cli) sessions(args []string) error {
	if len(args) > 2 {
		return errUsage
	}
	resp, err := c.call(admin.CmdSessions, args...)
	if err != nil {
		return err
	}
	if c.json {
		return c.printJSON(resp)
	}
	var s admin.Sessions
	if err := resp.Decode(&s); err != nil {
		return err
	}
	if s.Lookup != nil {
		if !s.Lookup.Found {
			return fmt.Errorf("no session for %s %s on this node", args[0], args[1])
		}
		fmt.Fprintf(c.out, "%s -> %s\n", s.Lookup.Key, s.Lookup.Backend)
		return nil
	}
	writeSessions(c.out, &s, time.Now())
	return nil
}

// writeSessions prints the replicated tables, the peers' lag and the
// counters as lbctl sessions shows them, with durations relative to now.
func writeSessions(w io.Writer, s *admin.Sessions, now time.Time) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	if s.Pool != "" {
		fmt.Fprintf(tw, "TABLE\tENTRIES OF POOL %s\n", s.Pool)
		for _, t := range s.Tables {
			fmt.Fprintf(tw, "%s\t%d\n", t.Name, t.Entries)
		}
	} else {
		fmt.Fprintln(tw, "TABLE\tENTRIES\tTOMBSTONES\tMAX\tEVICTIONS\tDIGEST")
		for _, t := range s.Tables {
			fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%s\n", t.Name, t.Entries, t.Tombstones, t.MaxEntries, t.Evictions, t.Digest)
		}
	}
	tw.Flush()
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "PEER\tADDRESS\tSTATE\tSINCE\tSENT\tPENDING\tLAG\tLAST ACK")
	for _, p := range s.Peers {
		last := "never"
		if !p.LastAck.IsZero() {
			last = now.Sub(p.LastAck).Round(time.Millisecond).String() + " ago"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%d\t%.2fms\t%s\n", p.Name, p.Addr, p.State,
			now.Sub(p.Since).Round(time.Second), p.RecordsSent, p.Pending, p.LagMs, last)
	}
	if len(s.Peers) == 0 {
		fmt.Fprintln(tw, "(none)")
	}
	tw.Flush()
	fmt.Fprintln(w)
	keys := make([]string, 0, len(s.Counters))
	for k := range s.Counters {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(w, "%s %d\n", k, s.Counters[k])
	}
}
