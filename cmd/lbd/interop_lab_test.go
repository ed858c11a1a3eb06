package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"lbd/lab"
)

// requireTool fails under CI (which installs it) and skips elsewhere when
// a program the test needs is missing.
func requireTool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is not installed (CI=true: .ci/run must install it)", name)
		}
		t.Skipf("%s is not installed", name)
	}
	return p
}

const keepalivedConfig = `
global_defs {
  router_id %[1]s
  vrrp_version %[2]d
  script_user root
  enable_script_security
}
vrrp_instance web {
  state BACKUP
  interface eth0
  virtual_router_id 51
  priority %[3]d
  advert_int %[4]s
  virtual_ipaddress {
    198.18.0.100/24 dev eth0
  }
%[5]s
}
`

// keepalived is Debian's keepalived running VRRP only in a lab host.
type keepalived struct {
	t    *testing.T
	h    *lab.Host
	conf string
	dir  string
	proc *lab.Proc
}

func startKeepalived(t *testing.T, h *lab.Host, version, prio int, advert time.Duration, peer string) *keepalived {
	t.Helper()
	bin := requireTool(t, "keepalived")
	k := &keepalived{t: t, h: h, dir: t.TempDir()}
	unicast := ""
	if peer != "" {
		unicast = fmt.Sprintf("  unicast_src_ip %s\n  unicast_peer {\n    %s\n  }", h.IPv4, peer)
	}
	k.conf = filepath.Join(k.dir, "keepalived.conf")
	cfg := fmt.Sprintf(keepalivedConfig, h.Name, version, prio, fmt.Sprint(advert.Seconds()), unicast)
	if err := os.WriteFile(k.conf, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	proc, err := h.Start(bin, "-n", "-l", "-D", "-P", "-G", "-f", k.conf,
		"-p", filepath.Join(k.dir, "keepalived.pid"), "-r", filepath.Join(k.dir, "vrrp.pid"))
	if err != nil {
		t.Fatal(err)
	}
	k.proc = proc
	return k
}

var keepalivedState = regexp.MustCompile(`\(web\) Entering (\w+) STATE`)

// state is keepalived's latest "Entering X STATE".
func (k *keepalived) state() string {
	m := keepalivedState.FindAllStringSubmatch(k.proc.Output(), -1)
	if len(m) == 0 {
		return "INIT"
	}
	return m[len(m)-1][1]
}

// complaints returns keepalived's log lines about packets it rejected.
func (k *keepalived) complaints() []string {
	var bad []string
	for _, line := range strings.Split(k.proc.Output(), "\n") {
		l := strings.ToLower(line)
		for _, w := range []string{"bogus", "invalid", "checksum", "ttl", "wrong", "mismatch", "not present"} {
			if strings.Contains(l, w) && !strings.Contains(l, "ttl 255") {
				bad = append(bad, line)
				break
			}
		}
	}
	return bad
}

// lbdPacketErrors sums the counters lbd keeps for rejected VRRP packets.
func lbdPacketErrors(p *pair, i int) map[string]uint64 {
	st, ok := p.status(i)
	bad := map[string]uint64{}
	if !ok {
		return bad
	}
	for _, k := range []string{"bad_checksum", "bad_ttl", "bad_length", "bad_header", "wrong_vrid", "wrong_version", "interval_errors", "addr_list_errors", "auth_errors"} {
		if v := st.Instances[0].Counters[k]; v != 0 {
			bad[k] = v
		}
	}
	return bad
}

// interopPair builds the lab of newPair but starts lbd only on node lbdAt;
// the other node runs keepalived.
func interopPair(t *testing.T, version int, unicast bool, lbdAt int) (*pair, *keepalived) {
	lbdBin, lbctlBin := binaries(t)
	p := &pair{t: t, l: lab.New(t), lbd: lbdBin, lbctl: lbctlBin}
	p.lb[0] = p.l.AddHostAddr("lb1", 11)
	p.lb[1] = p.l.AddHostAddr("lb2", 12)
	be := p.l.AddHostAddr("be1", 21)
	p.client = p.l.AddHostAddr("client", 50)
	greeter(t, be, "198.18.0.21:8080")
	advert := 100 * time.Millisecond
	if version == 2 {
		advert = time.Second
	}
	prio := [2]int{150, 100}
	peerOf := func(i int) string {
		if !unicast {
			return ""
		}
		return p.lb[1-i].IPv4.String()
	}
	p.dir[lbdAt] = t.TempDir()
	cfg := pairConfig(p.lb[lbdAt].Name, p.dir[lbdAt], prio[lbdAt], true)
	cfg = strings.Replace(cfg, `advert_interval = "100ms"`, fmt.Sprintf("advert_interval = %q\nversion = %d", advert, version), 1)
	if unicast {
		cfg = strings.Replace(cfg, "vips = [", fmt.Sprintf("unicast_peers = [%q]\nvips = [", peerOf(lbdAt)), 1)
	}
	if err := os.WriteFile(filepath.Join(p.dir[lbdAt], "lbd.toml"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	k := startKeepalived(t, p.lb[1-lbdAt], version, prio[1-lbdAt], advert, peerOf(1-lbdAt))
	p.start(lbdAt)
	return p, k
}

// TestKeepalivedInterop runs lbd against Debian's keepalived in both roles,
// VRRPv3 and VRRPv2, multicast and unicast: failover works each way and
// neither side rejects a packet of the other.
func TestKeepalivedInterop(t *testing.T) {
	for _, tc := range []struct {
		version int
		unicast bool
	}{{3, false}, {3, true}, {2, false}, {2, true}} {
		mode := "multicast"
		if tc.unicast {
			mode = "unicast"
		}
		wait := 20 * time.Second
		t.Run(fmt.Sprintf("v%d %s keepalived master lbd backup", tc.version, mode), func(t *testing.T) {
			p, k := interopPair(t, tc.version, tc.unicast, 1)
			lab.Eventually(t, wait, func() (bool, string) {
				return k.state() == "MASTER" && p.state(1) == "BACKUP" && p.holdsVIP(0) && !p.holdsVIP(1),
					fmt.Sprintf("keepalived %s, lbd %s", k.state(), p.state(1))
			})
			if st, _ := p.status(1); st.Instances[0].Master != "198.18.0.11" {
				t.Errorf("lbd sees master %q, want 198.18.0.11", st.Instances[0].Master)
			}
			// keepalived stops (priority 0): lbd takes over.
			k.proc.Signal(syscall.SIGTERM)
			k.proc.Wait(15 * time.Second)
			lab.Eventually(t, wait, func() (bool, string) {
				return p.state(1) == "MASTER" && p.holdsVIP(1) && !p.holdsVIP(0), "lbd is " + p.state(1)
			})
			// keepalived returns with the higher priority and preempts.
			k2 := startKeepalived(t, p.lb[0], tc.version, 150, map[int]time.Duration{3: 100 * time.Millisecond, 2: time.Second}[tc.version], map[bool]string{true: "198.18.0.12"}[tc.unicast])
			lab.Eventually(t, wait, func() (bool, string) {
				return k2.state() == "MASTER" && p.state(1) == "BACKUP" && !p.holdsVIP(1),
					fmt.Sprintf("keepalived %s, lbd %s", k2.state(), p.state(1))
			})
			if bad := append(k.complaints(), k2.complaints()...); len(bad) > 0 {
				t.Errorf("keepalived rejected lbd's packets:\n%s", strings.Join(bad, "\n"))
			}
			if bad := lbdPacketErrors(p, 1); len(bad) > 0 {
				t.Errorf("lbd rejected keepalived's packets: %v", bad)
			}
		})
		t.Run(fmt.Sprintf("v%d %s lbd master keepalived backup", tc.version, mode), func(t *testing.T) {
			p, k := interopPair(t, tc.version, tc.unicast, 0)
			lab.Eventually(t, wait, func() (bool, string) {
				return p.state(0) == "MASTER" && k.state() == "BACKUP" && p.holdsVIP(0) && !p.holdsVIP(1),
					fmt.Sprintf("lbd %s, keepalived %s", p.state(0), k.state())
			})
			// lbd crashes: keepalived takes over after master-down time.
			p.proc[0].Signal(syscall.SIGKILL)
			p.proc[0].Wait(10 * time.Second)
			lab.Eventually(t, wait, func() (bool, string) {
				return k.state() == "MASTER" && p.holdsVIP(1), "keepalived is " + k.state()
			})
			// lbd returns (removing its stale VIP) and preempts.
			p.start(0)
			lab.Eventually(t, wait, func() (bool, string) {
				return p.state(0) == "MASTER" && k.state() == "BACKUP" && p.holdsVIP(0) && !p.holdsVIP(1),
					fmt.Sprintf("lbd %s, keepalived %s", p.state(0), k.state())
			})
			// A demote hands over to keepalived.
			p.lbctlRun(0, "demote")
			lab.Eventually(t, wait, func() (bool, string) {
				return k.state() == "MASTER" && p.holdsVIP(1) && !p.holdsVIP(0), "keepalived is " + k.state()
			})
			if bad := k.complaints(); len(bad) > 0 {
				t.Errorf("keepalived rejected lbd's packets:\n%s", strings.Join(bad, "\n"))
			}
			if bad := lbdPacketErrors(p, 0); len(bad) > 0 {
				t.Errorf("lbd rejected keepalived's packets: %v", bad)
			}
		})
	}
}

// TestTsharkDecodesAdverts captures lbd's adverts and has tshark (Debian's
// Wireshark) check them: VRRP of the right version, checksum good.
func TestTsharkDecodesAdverts(t *testing.T) {
	requireTool(t, "tshark")
	for _, version := range []int{3, 2} {
		t.Run(fmt.Sprintf("v%d", version), func(t *testing.T) {
			lbdBin, lbctlBin := binaries(t)
			p := &pair{t: t, l: lab.New(t), lbd: lbdBin, lbctl: lbctlBin}
			p.lb[0] = p.l.AddHostAddr("lb1", 11)
			p.l.AddHostAddr("be1", 21)
			p.dir[0] = t.TempDir()
			advert := "100ms"
			if version == 2 {
				advert = "1s"
			}
			cfg := strings.Replace(pairConfig("lb1", p.dir[0], 150, true), `advert_interval = "100ms"`, fmt.Sprintf("advert_interval = %q\nversion = %d", advert, version), 1)
			os.WriteFile(filepath.Join(p.dir[0], "lbd.toml"), []byte(cfg), 0o644)
			p.start(0)
			lab.Eventually(t, 15*time.Second, func() (bool, string) { return p.state(0) == "MASTER", p.state(0) })
			pcap := filepath.Join(t.TempDir(), "vrrp.pcap")
			out, err := p.lb[0].Run(t.Context(), "tshark", "-i", "eth0", "-f", "ip proto 112", "-c", "2", "-a", "duration:10", "-w", pcap)
			if err != nil {
				t.Fatalf("capture: %v\n%s", err, out)
			}
			out, err = p.lb[0].Run(t.Context(), "tshark", "-r", pcap, "-o", "vrrp.v3_checksum_as_in_v2:FALSE", "-T", "fields",
				"-e", "vrrp.version", "-e", "vrrp.prio", "-e", "vrrp.checksum.status", "-e", "ip.ttl", "-e", "vrrp.ip_addr")
			if err != nil {
				// Older Wiresharks lack the preference; ask without it.
				out, err = p.lb[0].Run(t.Context(), "tshark", "-r", pcap, "-T", "fields",
					"-e", "vrrp.version", "-e", "vrrp.prio", "-e", "vrrp.checksum.status", "-e", "ip.ttl", "-e", "vrrp.ip_addr")
			}
			if err != nil {
				t.Fatalf("tshark -r: %v\n%s", err, out)
			}
			want := fmt.Sprintf("%d 150 1 255 198.18.0.100", version) // checksum status 1: good
			n := 0
			for _, line := range strings.Split(out, "\n") {
				if line == "" || line[0] < '0' || line[0] > '9' {
					continue // tshark's own notices
				}
				n++
				if got := strings.Join(strings.Fields(line), " "); got != want {
					t.Errorf("tshark decodes an advert as %q, want %q", got, want)
				}
			}
			if n != 2 {
				t.Errorf("tshark decoded %d adverts, want 2:\n%s", n, out)
			}
		})
	}
}
