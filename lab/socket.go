package lab

import (
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"strings"
	"time"

	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
)

const (
	dialTimeout = 5 * time.Second
	pingEvery   = 100 * time.Millisecond
)

// Listen opens a listener inside the host's namespace (see net.Listen); it
// keeps serving there. Addresses must be IP literals, since a name lookup
// could run outside the namespace.
func (h *Host) Listen(network, addr string) (net.Listener, error) {
	if err := literalOnly(network, addr); err != nil {
		return nil, err
	}
	var ln net.Listener
	err := h.Do(func() (err error) {
		ln, err = net.Listen(network, addr)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("lab: %s: listen %s %s: %w", h.Name, network, addr, err)
	}
	return ln, nil
}

// ListenPacket opens a packet socket inside the host's namespace (see
// net.ListenPacket), such as "udp4" or a raw "ip4:112".
func (h *Host) ListenPacket(network, addr string) (net.PacketConn, error) {
	if err := literalOnly(network, addr); err != nil {
		return nil, err
	}
	var c net.PacketConn
	err := h.Do(func() (err error) {
		c, err = net.ListenPacket(network, addr)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("lab: %s: listen %s %s: %w", h.Name, network, addr, err)
	}
	return c, nil
}

// Dial connects from inside the host's namespace (see net.Dial), giving up
// after 5 seconds. Addresses must be IP literals.
func (h *Host) Dial(network, addr string) (net.Conn, error) {
	if err := literalOnly(network, addr); err != nil {
		return nil, err
	}
	var c net.Conn
	err := h.Do(func() (err error) {
		// With one literal address the dialer creates the socket on this
		// goroutine, hence in the namespace.
		c, err = (&net.Dialer{Timeout: dialTimeout}).Dial(network, addr)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("lab: %s: dial %s %s: %w", h.Name, network, addr, err)
	}
	return c, nil
}

// DialFrom is Dial from the local address src (one of the host's, for
// example one of many client addresses added with AddAddrs).
func (h *Host) DialFrom(network string, src netip.Addr, addr string) (net.Conn, error) {
	if err := literalOnly(network, addr); err != nil {
		return nil, err
	}
	d := &net.Dialer{Timeout: dialTimeout}
	if strings.HasPrefix(network, "udp") {
		d.LocalAddr = net.UDPAddrFromAddrPort(netip.AddrPortFrom(src, 0))
	} else {
		d.LocalAddr = net.TCPAddrFromAddrPort(netip.AddrPortFrom(src, 0))
	}
	var c net.Conn
	err := h.Do(func() (err error) {
		c, err = d.Dial(network, addr)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("lab: %s: dial %s %s from %s: %w", h.Name, network, addr, src, err)
	}
	return c, nil
}

// literalOnly rejects host names for IP networks.
func literalOnly(network, addr string) error {
	host := addr
	switch {
	case strings.HasPrefix(network, "tcp"), strings.HasPrefix(network, "udp"):
		var err error
		if host, _, err = net.SplitHostPort(addr); err != nil {
			return fmt.Errorf("lab: address %q: %w", addr, err)
		}
	case strings.HasPrefix(network, "ip"):
	default:
		return nil // unix sockets and the like
	}
	if _, err := netip.ParseAddr(host); host != "" && err != nil {
		return fmt.Errorf("lab: address %q: want an IP literal, not a name", addr)
	}
	return nil
}

// Ping sends an ICMP or ICMPv6 echo request to dst every 100 ms until a
// reply arrives, and fails when none arrives within timeout, like
// `ip netns exec NS ping -w TIMEOUT DST` but without the ping binary.
func (h *Host) Ping(dst netip.Addr, timeout time.Duration) error {
	dst = dst.Unmap()
	network, laddr, proto := "ip4:icmp", "0.0.0.0", 1
	var echo, reply icmp.Type = ipv4.ICMPTypeEcho, ipv4.ICMPTypeEchoReply
	if dst.Is6() {
		network, laddr, proto = "ip6:ipv6-icmp", "::", 58
		echo, reply = ipv6.ICMPTypeEchoRequest, ipv6.ICMPTypeEchoReply
	}
	var c *icmp.PacketConn
	err := h.Do(func() (err error) {
		c, err = icmp.ListenPacket(network, laddr)
		return err
	})
	if err != nil {
		return fmt.Errorf("lab: %s: ping %s: %w", h.Name, dst, err)
	}
	defer c.Close()

	id := rand.IntN(0xffff) + 1
	to := &net.IPAddr{IP: dst.AsSlice(), Zone: dst.Zone()}
	buf := make([]byte, 1500)
	deadline := time.Now().Add(timeout)
	var sendErr error
	for seq := 1; time.Now().Before(deadline); seq++ {
		msg := icmp.Message{Type: echo, Body: &icmp.Echo{ID: id, Seq: seq, Data: []byte("lbd lab")}}
		b, err := msg.Marshal(nil) // the kernel fills in the ICMPv6 checksum
		if err != nil {
			return fmt.Errorf("lab: %s: ping %s: %w", h.Name, dst, err)
		}
		if _, err := c.WriteTo(b, to); err != nil {
			sendErr = err
		}
		next := time.Now().Add(pingEvery)
		if next.After(deadline) {
			next = deadline
		}
		if err := c.SetReadDeadline(next); err != nil {
			return fmt.Errorf("lab: %s: ping %s: %w", h.Name, dst, err)
		}
		for {
			n, from, err := c.ReadFrom(buf)
			if err != nil {
				break // deadline: send the next request
			}
			m, err := icmp.ParseMessage(proto, buf[:n])
			if err != nil || m.Type != reply {
				continue
			}
			e, ok := m.Body.(*icmp.Echo)
			src, isIP := from.(*net.IPAddr)
			if !ok || !isIP || e.ID != id {
				continue
			}
			if ip, _ := netip.AddrFromSlice(src.IP); ip.Unmap() == dst.WithZone("") {
				return nil
			}
		}
	}
	if sendErr != nil {
		return fmt.Errorf("lab: %s: ping %s: no reply within %v (send: %v): %w", h.Name, dst, timeout, sendErr, ErrTimeout)
	}
	return fmt.Errorf("lab: %s: ping %s: no reply within %v: %w", h.Name, dst, timeout, ErrTimeout)
}
