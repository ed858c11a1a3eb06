//go:build !linux

package vip

import (
	"errors"
	"net/netip"
)

// ErrNotImplemented is returned by the Kernel of systems other than Linux.
var ErrNotImplemented = errors.New("vip: not implemented on this system")

type otherKernel struct{}

// NewKernel returns the operating system's Kernel; only Linux has one.
func NewKernel() Kernel { return otherKernel{} }

func (otherKernel) AddAddr(string, netip.Prefix, string) error { return ErrNotImplemented }
func (otherKernel) DelAddr(string, netip.Prefix) error         { return ErrNotImplemented }
func (otherKernel) Addrs(string) ([]netip.Prefix, error)       { return nil, ErrNotImplemented }
func (otherKernel) Announce(string, []netip.Addr) error        { return ErrNotImplemented }
