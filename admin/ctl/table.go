package ctl

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"lbd/admin"
)

// writeStatus prints st as the tables `lbctl status` shows.
func writeStatus(w io.Writer, st *admin.Status, now time.Time) {
	fmt.Fprintf(w, "node %s  lbd %s  pid %d  up %s\n", st.Node, st.Version, st.PID, age(now, st.Started))
	fmt.Fprintf(w, "config %s  loaded %s ago  reloads %d  refused %d\n", st.Config, age(now, st.ConfigLoaded), st.Reloads, st.ReloadErrors)

	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "\nINSTANCE\tINTERFACE\tVRID\tSTATE\tPRIO\tEFFECTIVE\tMASTER\tFOR\tVIPS")
	for _, in := range st.Instances {
		state := in.State
		if in.Demoted {
			state += " (demoted)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%d\t%d\t%s\t%s\t%s\n", in.Name, in.Interface, in.VRID, state,
			in.Priority, in.EffectivePriority, dash(in.Master), age(now, in.Since), strings.Join(in.VIPs, ","))
	}
	if len(st.Instances) == 0 {
		fmt.Fprintln(tw, "(none)")
	}
	tw.Flush()
	for _, in := range st.Instances {
		if c := in.Counters; c != nil {
			fmt.Fprintf(w, "%s: adverts sent %d, received %d; transitions %d; bad checksum %d, bad ttl %d, bad length %d, wrong vrid %d, other address list %d\n",
				in.Name, c["adverts_sent"], c["adverts_received"], c["transitions"], c["bad_checksum"], c["bad_ttl"], c["bad_length"], c["wrong_vrid"], c["addr_list_errors"])
		}
		if len(in.FailingTracks) > 0 {
			fmt.Fprintf(w, "%s: failing tracks: %s\n", in.Name, strings.Join(in.FailingTracks, ", "))
		}
		for _, warn := range in.Warnings {
			fmt.Fprintf(w, "warning: %s: %s\n", in.Name, warn)
		}
	}

	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "\nFRONTEND\tBIND\tMODE\tPOOL\tSTATE\tACTIVE\tTOTAL")
	for _, f := range st.Frontends {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%d\n", f.Name, f.Bind, f.Mode, dash(f.DefaultPool), f.State, f.Active, f.Total)
	}
	if len(st.Frontends) == 0 {
		fmt.Fprintln(tw, "(none)")
	}
	tw.Flush()
	for _, f := range st.Frontends {
		if a := f.AccessLog; a != nil {
			fmt.Fprintf(w, "%s: access log %d lines, %d dropped, %d write errors\n", f.Name, a.Lines, a.Dropped, a.Errors)
		}
	}

	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "\nPOOL\tALGORITHM\tBACKEND\tSTATE\tHEALTH\tWEIGHT\tEFFECTIVE\tACTIVE\tTOTAL\tIN\tOUT\tLAST CHECK")
	for _, p := range st.Pools {
		for i, b := range p.Backends {
			name, algo := p.Name, p.Algorithm
			if i > 0 {
				name, algo = "", ""
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%d\t%d\t%d\t%s\t%s\t%s\n", name, algo, b.Address, b.State,
				dash(b.Health), b.Weight, b.EffectiveWeight, b.Active, b.Total, size(b.BytesIn), size(b.BytesOut), check(b, now))
		}
	}
	if len(st.Pools) == 0 {
		fmt.Fprintln(tw, "(none)")
	}
	tw.Flush()
	if len(st.Members) > 0 {
		tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "\nMEMBER\tADDRESS\tSTATE\tFOR")
		for _, m := range st.Members {
			name := m.Name
			if m.Self {
				name += " (self)"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", name, m.Addr, m.State, age(now, m.Since))
		}
		tw.Flush()
	}
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// age formats the time since t, rounded for people.
func age(now, t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	d := now.Sub(t)
	switch {
	case d < time.Second:
		return d.Round(time.Millisecond).String()
	case d < time.Hour:
		return d.Round(time.Second).String()
	default:
		return d.Round(time.Minute).String()
	}
}

// size formats n with a binary unit.
func size(n uint64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%dB", n)
	}
	div, exp := uint64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f%ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

// check describes the latest health check: "HTTP 200 1ms, 3s ago".
func check(b admin.Backend, now time.Time) string {
	if b.LastCheck == "" {
		return "-"
	}
	return fmt.Sprintf("%s %v, %s ago", b.LastCheck, b.LastLatency.Round(time.Millisecond), age(now, b.LastCheckAt))
}
