//go:build !linux

package main

import "testing"

func TestFaults(t *testing.T) {
	t.Skip("the fault tests (faults_test.go) run on Linux only: they lower a running daemon's open-file limit with prlimit(2)")
}
