package vrrp

import (
	"bufio"
	"encoding/binary"
	"encoding/hex"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// capturesFile holds real keepalived 2.2.7 packets as tshark -V -x printed
// them (a copy of shared/reference/keepalived-2.2.7-captures.txt).
const capturesFile = "testdata/keepalived-2.2.7-captures.txt"

// capture is one VRRP packet of capturesFile, taken out of its Ethernet
// frame and IPv4 header.
type capture struct {
	title    string // the "== " line naming the frame
	src, dst netip.Addr
	ttl      uint8
	payload  []byte // the VRRP message
}

// readCaptures returns every IPv4 protocol-112 frame of capturesFile and the
// number of frames of other kinds (the gratuitous ARP).
func readCaptures(t testing.TB) (caps []capture, others int) {
	t.Helper()
	f, err := os.Open(capturesFile)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var title string
	var frame []byte
	flush := func() {
		if len(frame) == 0 {
			return
		}
		c, ok := decodeFrame(t, title, frame)
		if ok {
			caps = append(caps, c)
		} else {
			others++
		}
		frame = nil
	}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "== "):
			flush()
			if !strings.HasPrefix(line, "== display filter") {
				title = strings.TrimPrefix(line, "== ")
			}
		case isHexLine(line):
			rest := line[6:]
			if i := strings.Index(rest, "   "); i >= 0 {
				rest = rest[:i]
			}
			b, err := hex.DecodeString(strings.ReplaceAll(rest, " ", ""))
			if err != nil {
				t.Fatalf("%s: hex line %q: %v", title, line, err)
			}
			frame = append(frame, b...)
		default:
			if line == "" {
				flush()
			}
		}
	}
	flush()
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return caps, others
}

// isHexLine matches tshark's "0010  00 28 …" dump lines.
func isHexLine(line string) bool {
	if len(line) < 8 || line[4:6] != "  " {
		return false
	}
	_, err := hex.DecodeString(line[:4])
	return err == nil
}

// decodeFrame strips the Ethernet header and the IPv4 header (and the
// Ethernet padding after the IP total length) of an IPv4 VRRP frame.
func decodeFrame(t testing.TB, title string, b []byte) (capture, bool) {
	t.Helper()
	if len(b) < 34 || binary.BigEndian.Uint16(b[12:]) != 0x0800 {
		return capture{}, false
	}
	ip := b[14:]
	ihl := int(ip[0]&0x0f) * 4
	total := int(binary.BigEndian.Uint16(ip[2:]))
	if ip[9] != ProtocolNumber {
		return capture{}, false
	}
	if total > len(ip) || ihl > total {
		t.Fatalf("%s: IP total length %d, header %d, frame %d", title, total, ihl, len(ip))
	}
	return capture{
		title:   title,
		src:     netip.AddrFrom4([4]byte(ip[12:16])),
		dst:     netip.AddrFrom4([4]byte(ip[16:20])),
		ttl:     ip[8],
		payload: ip[ihl:total],
	}, true
}

var (
	lb1 = netip.MustParseAddr("198.18.0.11")
	lb2 = netip.MustParseAddr("198.18.0.12")
	vip = netip.MustParseAddr("198.18.0.100")
)

// TestKeepalivedCaptures decodes every VRRP packet keepalived sent in the
// lab, checks the fields against tshark's decoding, and checks that
// re-marshalling gives keepalived's bytes, checksum included.
func TestKeepalivedCaptures(t *testing.T) {
	want := map[string]struct {
		adv      Advert
		checksum uint16
	}{
		"VRRPv2 advertisement (lb1 MASTER, prio 150, advert_int 1)": {
			Advert{Version: 2, Type: 1, VRID: 51, Priority: 150, Interval: time.Second, Addrs: []netip.Addr{vip}},
			0x8253,
		},
		"VRRPv2 advertisement with priority 0 (lb1 graceful stop, SIGTERM)": {
			Advert{Version: 2, Type: 1, VRID: 51, Priority: 0, Interval: time.Second, Addrs: []netip.Addr{vip}},
			0x1854,
		},
		"VRRPv3 advertisement (lb1 MASTER, prio 150, advert_int 0.1 = 10 centiseconds)": {
			Advert{Version: 3, Type: 1, VRID: 51, Priority: 150, Interval: 100 * time.Millisecond, Addrs: []netip.Addr{vip}},
			0xcb9d,
		},
	}
	caps, others := readCaptures(t)
	if len(caps) != len(want) || others != 1 {
		t.Fatalf("found %d VRRP frames and %d others in %s, want %d and 1 (the gratuitous ARP)", len(caps), others, capturesFile, len(want))
	}
	for _, c := range caps {
		t.Run(c.title, func(t *testing.T) {
			w, ok := want[c.title]
			if !ok {
				t.Fatalf("unexpected capture %q", c.title)
			}
			if c.src != lb1 || c.dst != Group4 || c.ttl != TTL {
				t.Errorf("IP src %v dst %v ttl %d, want %v %v %d", c.src, c.dst, c.ttl, lb1, Group4, TTL)
			}
			got, err := Parse(c.payload, c.src, c.dst)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if diff := cmp.Diff(&w.adv, got, cmpopts.EquateComparable(netip.Addr{})); diff != "" {
				t.Errorf("Parse (-want +got):\n%s", diff)
			}
			if sum := binary.BigEndian.Uint16(c.payload[6:]); sum != w.checksum {
				t.Errorf("checksum on the wire %#04x, tshark says %#04x", sum, w.checksum)
			}
			again, err := got.Marshal(c.src, c.dst)
			if err != nil {
				t.Fatalf("Marshal: %v", err)
			}
			if diff := cmp.Diff(c.payload, again); diff != "" {
				t.Errorf("Marshal differs from keepalived's bytes (-keepalived +ours):\n%s", diff)
			}
		})
	}
}

// TestCaptureChecksumForms checks the reference file's note on VRRPv3/IPv4
// checksums: keepalived includes the pseudo-header; the form without it
// (Cisco, keepalived's v3_checksum_as_v2) is refused; and keepalived's older
// unicast form, with 224.0.0.18 in the pseudo-header, is accepted and kept.
func TestCaptureChecksumForms(t *testing.T) {
	v3 := mustHex(t, "31339601000acb9dc6120064")
	if _, err := Parse(v3, lb1, Group4); err != nil {
		t.Fatalf("keepalived's multicast form: %v", err)
	}

	noPseudo := clone(v3)
	binary.BigEndian.PutUint16(noPseudo[6:], 0x724a)
	if _, err := Parse(noPseudo, lb1, Group4); err != ErrChecksum {
		t.Errorf("checksum without pseudo-header: err %v, want ErrChecksum", err)
	}

	// The same bytes sent by unicast to lb2: the checksum still names
	// 224.0.0.18, as older keepalived releases compute it.
	legacy, err := Parse(v3, lb1, lb2)
	if err != nil {
		t.Fatalf("legacy unicast form: %v", err)
	}
	if !legacy.LegacyChecksum {
		t.Errorf("LegacyChecksum = false for a checksum over 224.0.0.18 sent to %v", lb2)
	}
	again, err := legacy.Marshal(lb1, lb2)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(v3, again); diff != "" {
		t.Errorf("legacy form re-marshalled (-want +got):\n%s", diff)
	}

	// The standard unicast form names the peer.
	legacy.LegacyChecksum = false
	std, err := legacy.Marshal(lb1, lb2)
	if err != nil {
		t.Fatal(err)
	}
	if binary.BigEndian.Uint16(std[6:]) == 0xcb9d {
		t.Errorf("unicast checksum equals the multicast one")
	}
	got, err := Parse(std, lb1, lb2)
	if err != nil {
		t.Fatalf("standard unicast form: %v", err)
	}
	if got.LegacyChecksum {
		t.Errorf("LegacyChecksum = true for the standard unicast form")
	}
	// A multicast packet cannot be in the legacy form.
	if _, err := Parse(std, lb1, Group4); err != ErrChecksum {
		t.Errorf("unicast checksum received on the group: err %v, want ErrChecksum", err)
	}
}

func mustHex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func clone(b []byte) []byte { return append([]byte(nil), b...) }
