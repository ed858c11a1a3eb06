// Package vip turns VRRP decisions into kernel facts: the virtual IP
// addresses on an interface (`ip addr add VIP dev IF label IF:vrrp`) and their
// announcement to the segment with gratuitous ARP (RFC 5227 §3, in the
// request form keepalived sends) or unsolicited neighbour advertisements
// (RFC 4861 §7.2.6) for IPv6.
package vip

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"
	"time"
)

// Kernel is what vip needs of the operating system. The Linux
// implementation speaks netlink and raw ARP/NDP sockets; tests use a
// recording fake.
type Kernel interface {
	// AddAddr is `ip addr add P dev IF [label L]`; an address already
	// present is not an error.
	AddAddr(ifname string, p netip.Prefix, label string) error
	// DelAddr is `ip addr del P dev IF`; an absent address is not an error.
	DelAddr(ifname string, p netip.Prefix) error
	// Addrs is `ip addr show dev IF`.
	Addrs(ifname string) ([]netip.Prefix, error)
	// Announce sends one gratuitous ARP (IPv4) or unsolicited neighbour
	// advertisement (IPv6) for each address, from the interface's MAC.
	Announce(ifname string, addrs []netip.Addr) error
}

// SecondBurst is when a new owner announces its VIPs once more after the
// first burst, when no refresh is configured: past Linux's neighbour
// locktime (1 s), within which a host ignores a gratuitous ARP for an entry
// it updated moments before (keepalived's garp_master_delay does the same,
// after 5 s).
const SecondBurst = 1100 * time.Millisecond

// Config says which addresses one VRRP instance owns and how they are
// announced.
type Config struct {
	Interface    string
	VIPs         []netip.Prefix
	GARPRepeat   int           // announcements sent on claiming
	GARPInterval time.Duration // between them
	GARPRefresh  time.Duration // 0: off; else re-announce this often while claimed
}

// Owner adds and removes the VIPs of one VRRP instance. Its methods are safe
// for concurrent use; it owns one announcing goroutine while claimed.
type Owner struct {
	cfg  Config
	kern Kernel
	log  *slog.Logger

	mu      sync.Mutex // guards the fields below
	claimed bool
	stop    context.CancelFunc
	done    chan struct{}
	// announced counts announcement rounds sent, for status and tests.
	announced uint64
}

// New returns an Owner for cfg. Nothing is changed until Claim.
func New(cfg Config, kern Kernel, log *slog.Logger) *Owner {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Owner{cfg: cfg, kern: kern, log: log}
}

// Label returns the address label lbd puts on its VIPs ("eth0:vrrp"), or ""
// when the interface name leaves no room (labels are at most 15 bytes).
func Label(ifname string) string {
	l := ifname + ":vrrp"
	if len(l) > 15 {
		return ""
	}
	return l
}

// Claim adds every VIP to the interface and starts announcing them:
// GARPRepeat rounds GARPInterval apart, then one round every GARPRefresh.
// Claiming twice re-announces.
func (o *Owner) Claim() error {
	var errs []error
	for _, p := range o.cfg.VIPs {
		if err := o.kern.AddAddr(o.cfg.Interface, p, labelFor(o.cfg.Interface, p)); err != nil {
			errs = append(errs, fmt.Errorf("vip: adding %s to %s: %w", p, o.cfg.Interface, err))
		}
	}
	o.mu.Lock()
	o.claimed = true
	o.mu.Unlock()
	// The first round goes out before Claim returns, so that it precedes
	// the new master's first advert: the old master releases the VIP when
	// it hears that advert (make-before-break), by which time the segment
	// already points here.
	o.announceFrom(1)
	return errors.Join(errs...)
}

// labelFor labels IPv4 addresses; IPv6 addresses carry no labels.
func labelFor(ifname string, p netip.Prefix) string {
	if p.Addr().Is4() {
		return Label(ifname)
	}
	return ""
}

// Announce restarts the announcement burst, as after a split brain heals
// and the segment must learn again who holds the VIPs. It does nothing when
// the VIPs are not claimed.
func (o *Owner) Announce() {
	o.mu.Lock()
	claimed := o.claimed
	o.mu.Unlock()
	if claimed {
		o.announce()
	}
}

// announce replaces the running announcer with a fresh burst.
func (o *Owner) announce() { o.announceFrom(0) }

// announceFrom replaces the running announcer with a burst of which the
// first sync rounds are sent at once, before it returns.
func (o *Owner) announceFrom(sync int) {
	o.stopAnnouncer()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	o.mu.Lock()
	o.stop, o.done = cancel, done
	o.mu.Unlock()
	addrs := make([]netip.Addr, len(o.cfg.VIPs))
	for i, p := range o.cfg.VIPs {
		addrs[i] = p.Addr()
	}
	sent := 0
	for ; sent < sync && sent < o.cfg.GARPRepeat; sent++ {
		o.sendAnnouncement(addrs)
	}
	if o.cfg.GARPRepeat == 0 && o.cfg.GARPRefresh <= 0 {
		cancel()
		close(done)
		return
	}
	second := false
	var first time.Duration
	switch {
	case sent == 0:
	case sent < o.cfg.GARPRepeat:
		first = o.cfg.GARPInterval
	case o.cfg.GARPRefresh > 0:
		first = o.cfg.GARPRefresh
	default:
		first, second = SecondBurst, true
	}
	go func() {
		defer close(done)
		o.runAnnouncer(ctx, addrs, sent, first, second)
	}()
}

func (o *Owner) sendAnnouncement(addrs []netip.Addr) {
	if err := o.kern.Announce(o.cfg.Interface, addrs); err != nil {
		o.log.Warn("announcing VIPs failed", "interface", o.cfg.Interface, "err", err)
		return
	}
	o.mu.Lock()
	o.announced++
	o.mu.Unlock()
}

// runAnnouncer sends the rest of a burst (sent rounds are out), one round
// SecondBurst after it unless second says that round is the next, then one
// round every GARPRefresh if set.
func (o *Owner) runAnnouncer(ctx context.Context, addrs []netip.Addr, sent int, first time.Duration, second bool) {
	send := func() { o.sendAnnouncement(addrs) }
	t := time.NewTimer(first)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		send()
		sent++
		switch {
		case sent < o.cfg.GARPRepeat:
			t.Reset(o.cfg.GARPInterval)
		case o.cfg.GARPRefresh > 0:
			t.Reset(o.cfg.GARPRefresh)
		case !second && o.cfg.GARPRepeat > 0:
			second = true
			t.Reset(SecondBurst - time.Duration(o.cfg.GARPRepeat-1)*o.cfg.GARPInterval)
		default:
			return
		}
	}
}

// stopAnnouncer stops the announcing goroutine and waits for it.
func (o *Owner) stopAnnouncer() {
	o.mu.Lock()
	stop, done := o.stop, o.done
	o.stop, o.done = nil, nil
	o.mu.Unlock()
	if stop != nil {
		stop()
		<-done
	}
}

// Release stops announcing and removes every VIP from the interface.
func (o *Owner) Release() error {
	o.stopAnnouncer()
	o.mu.Lock()
	o.claimed = false
	o.mu.Unlock()
	return o.remove()
}

func (o *Owner) remove() error {
	var errs []error
	for _, p := range o.cfg.VIPs {
		if err := o.kern.DelAddr(o.cfg.Interface, p); err != nil {
			errs = append(errs, fmt.Errorf("vip: removing %s from %s: %w", p, o.cfg.Interface, err))
		}
	}
	return errors.Join(errs...)
}

// RemoveStale removes this instance's VIPs that an earlier lbd left on the
// interface when it crashed. Call it at start-up, before the election.
func (o *Owner) RemoveStale() ([]netip.Prefix, error) {
	present, err := o.kern.Addrs(o.cfg.Interface)
	if err != nil {
		return nil, fmt.Errorf("vip: listing addresses of %s: %w", o.cfg.Interface, err)
	}
	var stale []netip.Prefix
	for _, p := range o.cfg.VIPs {
		if contains(present, p) {
			stale = append(stale, p)
		}
	}
	var errs []error
	for _, p := range stale {
		if err := o.kern.DelAddr(o.cfg.Interface, p); err != nil {
			errs = append(errs, fmt.Errorf("vip: removing stale %s from %s: %w", p, o.cfg.Interface, err))
		}
	}
	return stale, errors.Join(errs...)
}

// Verify checks, while claimed, that every VIP is still on the interface
// and puts back (and announces) the ones someone else removed — an operator,
// NetworkManager, a DHCP client. It returns the addresses it restored.
func (o *Owner) Verify() ([]netip.Prefix, error) {
	o.mu.Lock()
	claimed := o.claimed
	o.mu.Unlock()
	if !claimed {
		return nil, nil
	}
	present, err := o.kern.Addrs(o.cfg.Interface)
	if err != nil {
		return nil, fmt.Errorf("vip: listing addresses of %s: %w", o.cfg.Interface, err)
	}
	var missing []netip.Prefix
	var errs []error
	for _, p := range o.cfg.VIPs {
		if contains(present, p) {
			continue
		}
		missing = append(missing, p)
		if err := o.kern.AddAddr(o.cfg.Interface, p, labelFor(o.cfg.Interface, p)); err != nil {
			errs = append(errs, fmt.Errorf("vip: restoring %s on %s: %w", p, o.cfg.Interface, err))
		}
	}
	if len(missing) > 0 {
		o.announce()
	}
	return missing, errors.Join(errs...)
}

// Claimed reports whether the VIPs are held.
func (o *Owner) Claimed() bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.claimed
}

// Announced returns how many announcement rounds were sent.
func (o *Owner) Announced() uint64 {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.announced
}

// Close stops announcing and removes the VIPs if they are held.
func (o *Owner) Close() error {
	o.stopAnnouncer()
	o.mu.Lock()
	claimed := o.claimed
	o.claimed = false
	o.mu.Unlock()
	if claimed {
		return o.remove()
	}
	return nil
}

func contains(list []netip.Prefix, p netip.Prefix) bool {
	for _, q := range list {
		if q.Addr() == p.Addr() {
			return true
		}
	}
	return false
}
