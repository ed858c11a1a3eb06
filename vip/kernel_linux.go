//go:build linux

package vip

import (
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/mdlayher/arp"
	"github.com/mdlayher/ethernet"
	"github.com/mdlayher/ndp"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// linuxKernel is Kernel on Linux: netlink for addresses, a packet socket
// for gratuitous ARP and an ICMPv6 socket for neighbour advertisements.
type linuxKernel struct{}

// NewKernel returns the operating system's Kernel.
func NewKernel() Kernel { return linuxKernel{} }

func toIPNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}

// AddAddr is `ip addr add P dev IF label L` (IPv4) or
// `ip addr add P dev IF nodad` (IPv6, usable at once without DAD).
func (linuxKernel) AddAddr(ifname string, p netip.Prefix, label string) error {
	link, err := netlink.LinkByName(ifname)
	if err != nil {
		return fmt.Errorf("finding %s: %w", ifname, err)
	}
	a := &netlink.Addr{IPNet: toIPNet(p), Label: label}
	if p.Addr().Is6() {
		a.Flags = unix.IFA_F_NODAD
	}
	if err := netlink.AddrAdd(link, a); err != nil && !errors.Is(err, unix.EEXIST) {
		return err
	}
	return nil
}

// DelAddr is `ip addr del P dev IF`.
func (linuxKernel) DelAddr(ifname string, p netip.Prefix) error {
	link, err := netlink.LinkByName(ifname)
	if err != nil {
		var nf netlink.LinkNotFoundError
		if errors.As(err, &nf) {
			return nil // the interface is gone, and its addresses with it
		}
		return fmt.Errorf("finding %s: %w", ifname, err)
	}
	err = netlink.AddrDel(link, &netlink.Addr{IPNet: toIPNet(p)})
	if err != nil && !errors.Is(err, unix.EADDRNOTAVAIL) && !errors.Is(err, unix.ESRCH) {
		return err
	}
	return nil
}

// Addrs is `ip addr show dev IF`.
func (linuxKernel) Addrs(ifname string) ([]netip.Prefix, error) {
	link, err := netlink.LinkByName(ifname)
	if err != nil {
		return nil, fmt.Errorf("finding %s: %w", ifname, err)
	}
	list, err := netlink.AddrList(link, netlink.FAMILY_ALL)
	if err != nil {
		return nil, err
	}
	out := make([]netip.Prefix, 0, len(list))
	for _, a := range list {
		ip, ok := netip.AddrFromSlice(a.IP)
		if !ok {
			continue
		}
		ones, _ := a.Mask.Size()
		out = append(out, netip.PrefixFrom(ip.Unmap(), ones))
	}
	return out, nil
}

// Announce sends one gratuitous ARP request per IPv4 address (sender and
// target both the VIP, to the broadcast address, as keepalived does) and one
// unsolicited neighbour advertisement with the override flag per IPv6
// address, to all-nodes ff02::1.
func (linuxKernel) Announce(ifname string, addrs []netip.Addr) error {
	ifi, err := net.InterfaceByName(ifname)
	if err != nil {
		return fmt.Errorf("finding %s: %w", ifname, err)
	}
	var v4, v6 []netip.Addr
	for _, a := range addrs {
		if a.Is4() {
			v4 = append(v4, a)
		} else {
			v6 = append(v6, a)
		}
	}
	var errs []error
	if len(v4) > 0 {
		errs = append(errs, garp(ifi, v4))
	}
	if len(v6) > 0 {
		errs = append(errs, unsolicitedNA(ifi, v6))
	}
	return errors.Join(errs...)
}

func garp(ifi *net.Interface, addrs []netip.Addr) error {
	c, err := arp.Dial(ifi)
	if err != nil {
		return fmt.Errorf("opening ARP socket on %s: %w", ifi.Name, err)
	}
	defer c.Close()
	for _, a := range addrs {
		p, err := arp.NewPacket(arp.OperationRequest, ifi.HardwareAddr, a, ethernet.Broadcast, a)
		if err != nil {
			return fmt.Errorf("building gratuitous ARP for %s: %w", a, err)
		}
		if err := c.WriteTo(p, ethernet.Broadcast); err != nil {
			return fmt.Errorf("sending gratuitous ARP for %s on %s: %w", a, ifi.Name, err)
		}
	}
	return nil
}

var allNodes = netip.MustParseAddr("ff02::1")

func unsolicitedNA(ifi *net.Interface, addrs []netip.Addr) error {
	c, _, err := ndp.Listen(ifi, ndp.LinkLocal)
	if err != nil {
		return fmt.Errorf("opening NDP socket on %s: %w", ifi.Name, err)
	}
	defer c.Close()
	for _, a := range addrs {
		m := &ndp.NeighborAdvertisement{
			Override:      true,
			TargetAddress: a,
			Options: []ndp.Option{&ndp.LinkLayerAddress{
				Direction: ndp.Target,
				Addr:      ifi.HardwareAddr,
			}},
		}
		if err := c.WriteTo(m, nil, allNodes); err != nil {
			return fmt.Errorf("sending neighbour advertisement for %s on %s: %w", a, ifi.Name, err)
		}
	}
	return nil
}
