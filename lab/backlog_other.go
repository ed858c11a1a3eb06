//go:build !linux

package lab

import "testing"

// NeverAccepts needs Linux: it skips the test, or fails it under CI=true.
func NeverAccepts(t testing.TB) string {
	t.Helper()
	skipOrFail(t, errUnsupported.Error())
	return ""
}
