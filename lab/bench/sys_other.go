//go:build !linux

package bench

import (
	"errors"
	"syscall"
)

var errUnsupported = errors.New("bench: the benchmark needs Linux (taskset, /proc)")

func pinSelf(int) error { return errUnsupported }

func raiseNoFile(uint64) (uint64, error) { return 0, errUnsupported }

func sysProcAttr() *syscall.SysProcAttr { return nil }

func signalGroup(int, syscall.Signal) error { return errUnsupported }
