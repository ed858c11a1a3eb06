package vrrp

import (
	"errors"
	"fmt"
	"net/netip"
	"time"
)

// Config is the static part of one virtual router instance ([[vrrp]]).
type Config struct {
	Version  int   // 3 (RFC 5798) or 2 (RFC 3768)
	VRID     uint8 // 1..255
	Priority uint8 // 1..254, or 255 for the address owner
	// Interval is Advertisement_Interval: a multiple of 10ms up to 40.95s
	// for version 3, whole seconds up to 255s for version 2.
	Interval time.Duration
	// Preempt lets a higher-priority backup take over from a lower-priority
	// master. The address owner always preempts (RFC 5798 §6.1).
	Preempt bool
	// PreemptDelay (keepalived's preempt_delay) holds preemption back
	// for this long after entering Backup from Init or Fault, and after
	// the first lower-priority advert that follows an advert of equal or
	// higher priority.
	PreemptDelay time.Duration
	// LocalAddr is this router's primary address on the link: the source
	// of its adverts, compared with the sender's on equal priority.
	LocalAddr netip.Addr
	// VIPs are the virtual addresses, advertised in this order. They are
	// of LocalAddr's family; for IPv6 the first should be link-local
	// (RFC 5798 §5.2.9).
	VIPs []netip.Addr
	// Tracks lower the priority by their weight while they fail; a
	// failing track of weight 0 puts the instance in Fault.
	Tracks []Track
	// AuthType and AuthData (version 2 only) are sent in adverts and
	// required of received ones: AuthNone, or AuthSimple with the
	// password in AuthData (keepalived "auth_type PASS").
	AuthType uint8
	AuthData [8]byte
}

// Track is one tracked object ([[vrrp.track]]): an interface, a pool or a
// script, whose failures reach the Machine through SetTrack.
type Track struct {
	Name   string // for status and logs
	Weight int    // 0..254; 0: a failure means Fault
}

// validate reports the first problem of c.
func (c *Config) validate() error {
	switch c.Version {
	case 3:
		if c.Interval < centisecond || c.Interval > MaxIntervalV3 || c.Interval%centisecond != 0 {
			return fmt.Errorf("vrrp: advert interval %v: VRRPv3 needs a multiple of 10ms in 10ms..40.95s", c.Interval)
		}
		if c.AuthType != AuthNone {
			return errors.New("vrrp: VRRPv3 has no authentication")
		}
	case 2:
		if c.Interval < time.Second || c.Interval > MaxIntervalV2 || c.Interval%time.Second != 0 {
			return fmt.Errorf("vrrp: advert interval %v: VRRPv2 needs whole seconds in 1s..255s", c.Interval)
		}
		if c.AuthType != AuthNone && c.AuthType != AuthSimple {
			return fmt.Errorf("vrrp: VRRPv2 authentication type %d is not supported (0 none, 1 simple)", c.AuthType)
		}
	default:
		return fmt.Errorf("vrrp: version %d is neither 2 nor 3", c.Version)
	}
	if c.VRID == 0 {
		return errors.New("vrrp: vrid 0 is out of range 1..255")
	}
	if c.Priority == 0 {
		return errors.New("vrrp: priority 0 is out of range 1..255")
	}
	if c.PreemptDelay < 0 {
		return fmt.Errorf("vrrp: preempt delay %v is negative", c.PreemptDelay)
	}
	if !c.LocalAddr.IsValid() {
		return errors.New("vrrp: no local address")
	}
	if len(c.VIPs) == 0 || len(c.VIPs) > 255 {
		return fmt.Errorf("vrrp: %d virtual addresses, want 1..255", len(c.VIPs))
	}
	for _, ip := range c.VIPs {
		if ip.Is4() != c.LocalAddr.Unmap().Is4() || !ip.IsValid() {
			return fmt.Errorf("vrrp: virtual address %v is not of the family of local address %v", ip, c.LocalAddr)
		}
	}
	for i, t := range c.Tracks {
		if t.Weight < 0 || t.Weight > 254 {
			return fmt.Errorf("vrrp: track %d (%s): weight %d is out of range 0..254", i, t.Name, t.Weight)
		}
		if t.Weight > 0 && c.Priority == PriorityOwner {
			return fmt.Errorf("vrrp: track %d (%s): the address owner (priority 255) cannot have weighted tracks; use weight 0 or a lower priority", i, t.Name)
		}
	}
	return nil
}
