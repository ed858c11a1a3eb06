package lab

import (
	"fmt"
	"maps"
	"math"
	"net/netip"
	"slices"
	"strconv"
	"strings"
)

// nftTable is the table DropProto keeps in a host's namespace.
const nftTable = "inet lbdt"

// LinkDown takes the host's bridge port down, like pulling its cable out
// of the switch: eth0 loses carrier and no frame passes either way.
//
// Equivalent to: `ip -n SWITCH link set PORT down`.
func (h *Host) LinkDown() error {
	_, err := run("ip", "-n", h.lab.Switch, "link", "set", h.Port, "down")
	return err
}

// LinkUp brings the bridge port back and returns once the port forwards.
//
// Equivalent to: `ip -n SWITCH link set PORT up`.
func (h *Host) LinkUp() error {
	if _, err := run("ip", "-n", h.lab.Switch, "link", "set", h.Port, "up"); err != nil {
		return err
	}
	return h.waitLinkUp()
}

// SetLoss makes eth0 drop percent (0..100) of the packets the host sends;
// what it receives is not affected. On a kernel without netem it installs
// the same loss as an nftables rule at eth0's egress hook.
//
// Equivalent to: `tc -n NS qdisc replace dev eth0 root netem loss PERCENT%`.
func (h *Host) SetLoss(percent float64) error {
	if !(percent >= 0 && percent <= 100) {
		return fmt.Errorf("lab: %s: loss %v%% out of range 0..100", h.Name, percent)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	loss := strconv.FormatFloat(percent, 'f', -1, 64) + "%"
	_, err := run("tc", "-n", h.Netns, "qdisc", "replace", "dev", h.Iface, "root", "netem", "loss", loss)
	if err == nil {
		h.loss = "netem"
		return nil
	}
	if !strings.Contains(err.Error(), "qdisc kind is unknown") { // no CONFIG_NET_SCH_NETEM
		return err
	}
	if _, err := runStdin(nftLossScript(h.Iface, percent), "ip", "netns", "exec", h.Netns, "nft", "-f", "-"); err != nil {
		return err
	}
	h.loss = "nft"
	return nil
}

// ClearLoss removes what SetLoss installed; without it, it does nothing.
//
// Equivalent to: `tc -n NS qdisc del dev eth0 root`.
func (h *Host) ClearLoss() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	var err error
	switch h.loss {
	case "netem":
		_, err = run("tc", "-n", h.Netns, "qdisc", "del", "dev", h.Iface, "root")
	case "nft":
		_, err = runStdin(nftLossReset, "ip", "netns", "exec", h.Netns, "nft", "-f", "-")
	}
	if err != nil {
		return err
	}
	h.loss = ""
	return nil
}

const (
	nftLossTable = "netdev lbdt_loss"
	nftLossReset = "table " + nftLossTable + " {}\ndelete table " + nftLossTable + "\n"
)

// nftLossScript replaces the loss table with one dropping percent of what
// iface sends, drawing a random number in 0..9999 per packet.
func nftLossScript(iface string, percent float64) string {
	match := fmt.Sprintf("numgen random mod 10000 < %d ", int(math.Round(percent*100)))
	if percent >= 100 {
		match = ""
	}
	return nftLossReset + fmt.Sprintf("table %s {\n\tchain egress {\n"+
		"\t\ttype filter hook egress device %q priority filter; policy accept;\n"+
		"\t\t%sdrop\n\t}\n}\n", nftLossTable, iface, match)
}

// DropProto makes the host drop IPv4 and IPv6 packets of IP protocol proto
// (112 is VRRP) that it sends or receives, with an nftables table in its
// namespace. Packet sockets (tcpdump, ARP, NDP via AF_PACKET) still see
// incoming ones.
//
// Equivalent to: `nft add rule inet lbdt input meta l4proto PROTO drop`,
// and the same for output.
func (h *Host) DropProto(proto int) error {
	return h.setDrop(proto, true)
}

// UndropProto stops dropping protocol proto; it does nothing when proto
// was not dropped.
func (h *Host) UndropProto(proto int) error {
	return h.setDrop(proto, false)
}

func (h *Host) setDrop(proto int, drop bool) error {
	if proto < 0 || proto > 255 {
		return fmt.Errorf("lab: %s: IP protocol %d out of range 0..255", h.Name, proto)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.dropped[proto] == drop {
		return nil
	}
	next := maps.Clone(h.dropped)
	if drop {
		next[proto] = true
	} else {
		delete(next, proto)
	}
	script := nftScript(slices.Sorted(maps.Keys(next)))
	if _, err := runStdin(script, "ip", "netns", "exec", h.Netns, "nft", "-f", "-"); err != nil {
		return err
	}
	h.dropped = next
	return nil
}

// nftScript replaces the lab's table with one dropping protos, in one
// transaction; with no protos it only removes the table.
func nftScript(protos []int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "table %s {}\ndelete table %s\n", nftTable, nftTable)
	if len(protos) == 0 {
		return b.String()
	}
	set := make([]string, len(protos))
	for i, p := range protos {
		set[i] = strconv.Itoa(p)
	}
	fmt.Fprintf(&b, "table %s {\n", nftTable)
	for _, hook := range []string{"input", "output"} {
		fmt.Fprintf(&b, "\tchain %s {\n\t\ttype filter hook %s priority filter; policy accept;\n", hook, hook)
		fmt.Fprintf(&b, "\t\tmeta l4proto { %s } drop\n\t}\n", strings.Join(set, ", "))
	}
	b.WriteString("}\n")
	return b.String()
}

// nftCutTable is the table Cut keeps in a host's namespace.
const nftCutTable = "inet lbdt_cut"

// Cut makes the host drop every IPv4 and IPv6 packet it sends to or
// receives from the given addresses, as a firewall between two parts of a
// network would: a partition. Cut with no address removes it.
//
// Equivalent to: `nft add rule inet lbdt_cut input ip saddr { ADDRS } drop`,
// and the same for output with daddr.
func (h *Host) Cut(addrs ...netip.Addr) error {
	var v4, v6 []string
	for _, a := range addrs {
		if a.Is4() || a.Is4In6() {
			v4 = append(v4, a.Unmap().String())
		} else {
			v6 = append(v6, a.String())
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "table %s {}\ndelete table %s\n", nftCutTable, nftCutTable)
	if len(addrs) > 0 {
		fmt.Fprintf(&b, "table %s {\n", nftCutTable)
		for _, c := range []struct{ hook, dir string }{{"input", "saddr"}, {"output", "daddr"}} {
			fmt.Fprintf(&b, "\tchain %s {\n\t\ttype filter hook %s priority filter; policy accept;\n", c.hook, c.hook)
			if len(v4) > 0 {
				fmt.Fprintf(&b, "\t\tip %s { %s } drop\n", c.dir, strings.Join(v4, ", "))
			}
			if len(v6) > 0 {
				fmt.Fprintf(&b, "\t\tip6 %s { %s } drop\n", c.dir, strings.Join(v6, ", "))
			}
			b.WriteString("\t}\n")
		}
		b.WriteString("}\n")
	}
	_, err := runStdin(b.String(), "ip", "netns", "exec", h.Netns, "nft", "-f", "-")
	return err
}

// AddAddrs adds the prefixes to the host's eth0 in one batch (thousands of
// client addresses take a few milliseconds).
//
// Equivalent to: `ip -n NS -batch -` with one `address add PREFIX dev eth0`
// per prefix.
func (h *Host) AddAddrs(prefixes ...netip.Prefix) error {
	var b strings.Builder
	for _, p := range prefixes {
		fmt.Fprintf(&b, "address add %s dev %s\n", p, h.Iface)
	}
	_, err := runStdin(b.String(), "ip", "-n", h.Netns, "-batch", "-")
	return err
}

// AddRoute adds a route to dst through gateway via on eth0.
//
// Equivalent to: `ip -n NS route add DST via VIA dev eth0`.
func (h *Host) AddRoute(dst netip.Prefix, via netip.Addr) error {
	_, err := run("ip", "-n", h.Netns, "route", "add", dst.String(), "via", via.String(), "dev", h.Iface)
	return err
}
