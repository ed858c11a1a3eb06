package lab

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
)

// ErrNoNeighbor is returned by Host.Neighbor when the neighbour table holds
// no usable link-layer address for the IP.
var ErrNoNeighbor = errors.New("lab: no neighbor entry")

var hostName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_-]{0,31}$`)

const (
	firstHost = 11 // hosts are numbered from 198.18.0.11 on
	lastHost  = 254
)

// Host is a network namespace plugged into the lab's switch.
type Host struct {
	Name    string           // as given to AddHost
	Netns   string           // namespace name, Lab.ID + "-" + Name
	IPv4    netip.Addr       // 198.18.0.N
	IPv6    netip.Addr       // 2001:db8::N (N's decimal digits as hex digits)
	Prefix4 netip.Prefix     // IPv4 with its length, 198.18.0.N/24
	Prefix6 netip.Prefix     // IPv6 with its length, 2001:db8::N/64
	MAC     net.HardwareAddr // of Iface
	Iface   string           // "eth0"
	Port    string           // the bridge-side veth, in Lab.Switch

	lab *Lab

	mu      sync.Mutex   // guards all following fields
	dropped map[int]bool // IP protocols dropped by DropProto
	loss    string       // how SetLoss drops: "", "netem" or "nft"
}

// AddHost adds a host numbered with the lowest free N from 11 on; see
// AddHostAddr.
func (l *Lab) AddHost(name string) *Host {
	l.t.Helper()
	return l.AddHostAddr(name, 0)
}

// AddHostAddr adds host name with number n (1..254; 0 picks the lowest
// free number from 11 on): a namespace with loopback up and eth0, one end of
// a veth pair whose other end is a port of the bridge, holding
// 198.18.0.n/24 and 2001:db8::n/64 with IPv6 DAD off. It returns once eth0
// is up and the bridge port forwards. Failures end the test.
//
// Equivalent to: `ip netns add NS; ip -n SW link add PORT type veth peer
// name eth0 netns NS; ip -n SW link set PORT master br0 up; ip -n NS addr
// add 198.18.0.n/24 dev eth0; ip -n NS addr add 2001:db8::n/64 dev eth0 nodad`.
func (l *Lab) AddHostAddr(name string, n int) *Host {
	l.t.Helper()
	h, err := l.NewHost(name, n)
	if err != nil {
		l.t.Fatal(err)
	}
	return h
}

// NewHost is AddHostAddr for programs: it returns the error instead of
// ending a test.
func (l *Lab) NewHost(name string, n int) (*Host, error) {
	h, err := l.reserve(name, n)
	if err != nil {
		return nil, err
	}
	if err := h.setup(); err != nil {
		return nil, err
	}
	return h, nil
}

// reserve checks name and n and records the new host.
func (l *Lab) reserve(name string, n int) (*Host, error) {
	if !hostName.MatchString(name) {
		return nil, fmt.Errorf("lab: invalid host name %q (want 1-32 of [A-Za-z0-9_-])", name)
	}
	if n < 0 || n > lastHost {
		return nil, fmt.Errorf("lab: host %s: number %d out of range 1..%d", name, n, lastHost)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, dup := l.hosts[name]; dup {
		return nil, fmt.Errorf("lab: host %s already exists", name)
	}
	if n == 0 {
		for n = firstHost; n <= lastHost && l.used[n]; n++ {
		}
		if n > lastHost {
			return nil, fmt.Errorf("lab: host %s: no free host number", name)
		}
	}
	if l.used[n] {
		return nil, fmt.Errorf("lab: host %s: number %d already used", name, n)
	}
	v4 := netip.AddrFrom4([4]byte{198, 18, 0, byte(n)})
	v6 := netip.MustParseAddr("2001:db8::" + strconv.Itoa(n))
	port := fmt.Sprintf("p%d-%s", n, name)
	if len(port) > 15 { // IFNAMSIZ-1; "p<n>-" keeps it unique in the switch
		port = port[:15]
	}
	h := &Host{
		Name: name, Netns: l.ID + "-" + name,
		IPv4: v4, IPv6: v6, Prefix4: netip.PrefixFrom(v4, 24), Prefix6: netip.PrefixFrom(v6, 64),
		Iface: "eth0", Port: port, lab: l, dropped: map[int]bool{},
	}
	l.used[n] = true
	l.hosts[name] = h
	return h, nil
}

func (h *Host) setup() error {
	ns, sw := h.Netns, h.lab.Switch
	if _, err := run("ip", "netns", "add", ns); err != nil {
		return err
	}
	// Set before eth0 exists, so that eth0 (and its link-local) start without DAD.
	for _, key := range []string{"net.ipv6.conf.all.accept_dad", "net.ipv6.conf.default.accept_dad"} {
		if err := setSysctl(ns, key, "0"); err != nil {
			return err
		}
	}
	steps := [][]string{
		{"ip", "-n", ns, "link", "set", "lo", "up"},
		{"ip", "-n", sw, "link", "add", h.Port, "type", "veth", "peer", "name", h.Iface, "netns", ns},
		{"ip", "-n", sw, "link", "set", h.Port, "master", h.lab.Bridge, "up"},
		{"ip", "-n", ns, "link", "set", h.Iface, "up"},
		{"ip", "-n", ns, "addr", "add", h.Prefix4.String(), "dev", h.Iface},
		{"ip", "-n", ns, "addr", "add", h.Prefix6.String(), "dev", h.Iface, "nodad"},
	}
	for _, args := range steps {
		if _, err := run(args...); err != nil {
			return err
		}
	}
	out, err := run("ip", "-n", ns, "-j", "link", "show", "dev", h.Iface)
	if err != nil {
		return err
	}
	link, err := parseLink(out)
	if err != nil {
		return err
	}
	if h.MAC, err = net.ParseMAC(link.Address); err != nil {
		return fmt.Errorf("lab: %s: mac of %s: %w", h.Name, h.Iface, err)
	}
	return h.waitLinkUp()
}

// waitLinkUp waits until eth0 is operationally up and the bridge port
// forwards (`bridge -j link show dev PORT` says "forwarding").
func (h *Host) waitLinkUp() error {
	err := poll(linkWait, func() (bool, string) {
		out, err := run("ip", "-n", h.Netns, "-j", "link", "show", "dev", h.Iface)
		if err != nil {
			return false, err.Error()
		}
		link, err := parseLink(out)
		if err != nil || link.OperState != "UP" {
			return false, fmt.Sprintf("%s operstate %q %v", h.Iface, link.OperState, err)
		}
		out, err = run("bridge", "-n", h.lab.Switch, "-j", "link", "show", "dev", h.Port)
		if err != nil {
			return false, err.Error()
		}
		port, err := parseLink(out)
		if err != nil || port.State != "forwarding" {
			return false, fmt.Sprintf("bridge port %s state %q %v", h.Port, port.State, err)
		}
		return true, ""
	})
	if err != nil {
		return fmt.Errorf("lab: host %s: %w", h.Name, err)
	}
	return nil
}

// Command returns a command that runs in the host's namespace, like
// `ip netns exec NS name args...`. The caller owns it; whatever still runs
// in the namespace is killed at cleanup.
func (h *Host) Command(ctx context.Context, name string, args ...string) *exec.Cmd {
	return exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", h.Netns, name}, args...)...)
}

// Run runs a command in the host's namespace and returns its combined
// output.
func (h *Host) Run(ctx context.Context, name string, args ...string) (string, error) {
	out, err := h.Command(ctx, name, args...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("lab: %s: %s %v: %w: %s", h.Name, name, args, err, strings.TrimSpace(string(out)))
	}
	return string(out), nil
}

// Do runs fn on an OS thread switched into the host's namespace and
// switches back afterwards. Sockets opened by fn stay in the namespace;
// goroutines started by fn do not run in it.
func (h *Host) Do(fn func() error) error { return doInNetns(h.Netns, fn) }

// Neighbor returns the link-layer address the host's neighbour table holds
// for ip (who the host thinks owns it), or an error wrapping ErrNoNeighbor.
//
// Equivalent to: `ip -n NS -j neigh show to IP dev eth0`.
func (h *Host) Neighbor(ip netip.Addr) (net.HardwareAddr, error) {
	out, err := run("ip", "-n", h.Netns, "-j", "neigh", "show", "to", ip.String(), "dev", h.Iface)
	if err != nil {
		return nil, err
	}
	return parseNeigh(out, ip)
}

// Addrs lists the addresses on eth0 with their prefix lengths, including
// the IPv6 link-local one.
//
// Equivalent to: `ip -n NS -j addr show dev eth0`.
func (h *Host) Addrs() ([]netip.Prefix, error) {
	out, err := run("ip", "-n", h.Netns, "-j", "addr", "show", "dev", h.Iface)
	if err != nil {
		return nil, err
	}
	return parseAddrs(out)
}

// ipLink is one element of `ip -j link` or `bridge -j link` output.
type ipLink struct {
	IfName    string `json:"ifname"`
	Address   string `json:"address"`
	OperState string `json:"operstate"`
	State     string `json:"state"` // bridge port state
	AddrInfo  []struct {
		Local     string `json:"local"`
		PrefixLen int    `json:"prefixlen"`
	} `json:"addr_info"`
}

// parseLink returns the only interface in `ip -j link show dev X` output.
func parseLink(out string) (ipLink, error) {
	var links []ipLink
	if err := json.Unmarshal([]byte(out), &links); err != nil {
		return ipLink{}, fmt.Errorf("lab: parsing ip -j link: %w", err)
	}
	if len(links) != 1 {
		return ipLink{}, fmt.Errorf("lab: parsing ip -j link: %d interfaces, want 1", len(links))
	}
	return links[0], nil
}

// parseAddrs returns the addresses in `ip -j addr show dev X` output.
func parseAddrs(out string) ([]netip.Prefix, error) {
	var links []ipLink
	if err := json.Unmarshal([]byte(out), &links); err != nil {
		return nil, fmt.Errorf("lab: parsing ip -j addr: %w", err)
	}
	var prefixes []netip.Prefix
	for _, l := range links {
		for _, a := range l.AddrInfo {
			addr, err := netip.ParseAddr(a.Local)
			if err != nil {
				return nil, fmt.Errorf("lab: parsing ip -j addr: %w", err)
			}
			p := netip.PrefixFrom(addr, a.PrefixLen)
			if !p.IsValid() {
				return nil, fmt.Errorf("lab: parsing ip -j addr: invalid prefix length %d for %s", a.PrefixLen, addr)
			}
			prefixes = append(prefixes, p)
		}
	}
	return prefixes, nil
}

// parseNeigh returns the link-layer address for ip in `ip -j neigh`
// output; entries without one (INCOMPLETE, FAILED) do not count.
func parseNeigh(out string, ip netip.Addr) (net.HardwareAddr, error) {
	var neighs []struct {
		Dst    string   `json:"dst"`
		LLAddr string   `json:"lladdr"`
		State  []string `json:"state"`
	}
	if err := json.Unmarshal([]byte(out), &neighs); err != nil {
		return nil, fmt.Errorf("lab: parsing ip -j neigh: %w", err)
	}
	for _, n := range neighs {
		dst, err := netip.ParseAddr(n.Dst)
		if err != nil || dst != ip || n.LLAddr == "" {
			continue
		}
		mac, err := net.ParseMAC(n.LLAddr)
		if err != nil {
			return nil, fmt.Errorf("lab: parsing ip -j neigh: %w", err)
		}
		return mac, nil
	}
	return nil, fmt.Errorf("%w for %s", ErrNoNeighbor, ip)
}
