//go:build linux

package main

import (
	"net"
	"testing"

	"github.com/p2ptun/p2ptun/bench/wan/link"
)

// TestListening: iperf3's server is ready once the kernel lists its port
// as listening in B's namespace; the check itself binds nothing (a probe
// bind could take the port from a server still starting).
func TestListening(t *testing.T) {
	if err := link.Available(); err != nil {
		t.Skipf("link emulator: %v", err)
	}
	l, err := link.New(link.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	ln, err := l.B.Listen("tcp4", "0.0.0.0:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	if err := listening(l.B, port); err != nil {
		t.Errorf("port %d listens in B: %v", port, err)
	}
	if err := listening(l.A, port); err == nil {
		t.Errorf("port %d reported listening in A, where nothing listens", port)
	}
	ln.Close()
	if err := listening(l.B, port); err == nil {
		t.Errorf("port %d reported listening after its listener closed", port)
	}
}
