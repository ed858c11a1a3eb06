package config

import (
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
)

// splitHostPort checks s is host:port with a port in 1..65535 and returns
// the host; needHost rejects ":port".
func splitHostPort(s string, needHost bool) (string, error) {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return "", fmt.Errorf("%q is not host:port", s)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return "", fmt.Errorf("%q: port %q is not a number in 1..65535", s, port)
	}
	if host == "" && needHost {
		return "", fmt.Errorf("%q has no host", s)
	}
	if host != "" && !validHost(host) {
		return "", fmt.Errorf("%q: %q is neither an IP address nor a host name", s, host)
	}
	return host, nil
}

// validHost accepts an IP address or a DNS name (RFC 1123 labels).
func validHost(h string) bool {
	if _, err := netip.ParseAddr(h); err == nil {
		return true
	}
	if len(h) > 253 {
		return false
	}
	for _, l := range strings.Split(strings.TrimSuffix(h, "."), ".") {
		if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
			return false
		}
		for _, c := range []byte(l) {
			if !(c == '-' || '0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z') {
				return false
			}
		}
	}
	return true
}

// normHostPort gives one spelling of host:port for duplicate checks.
func normHostPort(s string) string {
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()).String()
	}
	return strings.ToLower(s)
}

// validToken reports whether s is an HTTP token (RFC 9110 section 5.6.2),
// as header and cookie names must be.
func validToken(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range []byte(s) {
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`"(),/:;<=>?@[\]{}`, c) >= 0 {
			return false
		}
	}
	return true
}

// validIfName reports whether s can be a Linux interface name (IFNAMSIZ).
func validIfName(s string) bool {
	return s != "" && len(s) <= 15 && s != "." && s != ".." && !strings.ContainsAny(s, "/: \t\n")
}

// checkExpectStatus parses "2xx", "200", "200-399" or a comma-separated
// list of those; every code lies in 100..599.
func checkExpectStatus(s string) error {
	if s == "" {
		return fmt.Errorf("must not be empty")
	}
	for _, item := range strings.Split(s, ",") {
		item = strings.TrimSpace(item)
		if len(item) == 3 && item[1:] == "xx" && '1' <= item[0] && item[0] <= '5' {
			continue
		}
		lo, hi, isRange := strings.Cut(item, "-")
		a, errA := statusCode(lo)
		b, errB := a, error(nil)
		if isRange {
			b, errB = statusCode(hi)
		}
		if errA != nil || errB != nil || a > b {
			return fmt.Errorf("%q is not a status pattern (such as \"2xx\", \"200-399\" or \"200,204\")", s)
		}
	}
	return nil
}

func statusCode(s string) (int, error) {
	n, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil || n < 100 || n > 599 {
		return 0, fmt.Errorf("bad status")
	}
	return n, nil
}

// checkHashKey accepts source_ip, uri, header:NAME and cookie:NAME.
func checkHashKey(s string) error {
	switch s {
	case "source_ip", "uri":
		return nil
	}
	kind, name, ok := strings.Cut(s, ":")
	if ok && (kind == "header" || kind == "cookie") && validToken(name) {
		return nil
	}
	return fmt.Errorf("%q is not source_ip, uri, header:NAME or cookie:NAME", s)
}

// checkHostPattern accepts "example.com" and "*.example.com".
func checkHostPattern(s string) error {
	h := strings.TrimPrefix(s, "*.")
	if strings.Contains(h, ":") || !validHost(h) {
		return fmt.Errorf("%q is not a host name or *.domain pattern", s)
	}
	return nil
}

// checkHeaderMatch accepts "Name" and "Name: value".
func checkHeaderMatch(s string) error {
	name, _, _ := strings.Cut(s, ":")
	if !validToken(name) {
		return fmt.Errorf("%q is not \"Name\" or \"Name: value\"", s)
	}
	return nil
}

// family names the address family of a for messages.
func family(a netip.Addr) string {
	if a.Unmap().Is4() {
		return "IPv4"
	}
	return "IPv6"
}

// list joins words as "a, b or c".
func list(words ...string) string {
	words = slices.Clone(words)
	for i, w := range words {
		if w == "" {
			words[i] = `""`
		}
	}
	if len(words) < 2 {
		return strings.Join(words, "")
	}
	return strings.Join(words[:len(words)-1], ", ") + " or " + words[len(words)-1]
}

func isIP(s string) bool {
	_, err := netip.ParseAddr(s)
	return err == nil
}
