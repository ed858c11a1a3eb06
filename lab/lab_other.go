//go:build !linux

package lab

import (
	"errors"
	"os"
	"syscall"
	"testing"
)

var errUnsupported = errors.New("lab: network namespaces need Linux")

// requirePlatform skips the test, or fails it under CI=true.
func requirePlatform(t testing.TB) {
	t.Helper()
	skipOrFail(t, errUnsupported.Error())
}

func doInNetns(string, func() error) error { return errUnsupported }

func sysProcAttr() *syscall.SysProcAttr { return nil }

func signalGroup(int, os.Signal) error { return errUnsupported }

func killGroup(int) error { return errUnsupported }

func killPID(int) error { return errUnsupported }

func processAlive(int) bool { return true }
