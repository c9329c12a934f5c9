package daemon

import (
	"net"
	"testing"
)

// TestLoopbackOnly: profiles are served only on addresses reachable from
// this host alone.
func TestLoopbackOnly(t *testing.T) {
	for addr, want := range map[string]bool{
		"127.0.0.1:9464": true,
		"127.3.0.1:9464": true,
		"[::1]:9464":     true,
		"0.0.0.0:9464":   false,
		"[::]:9464":      false,
		"10.0.0.1:9464":  false,
	} {
		a, err := net.ResolveTCPAddr("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		if got := loopbackOnly(a); got != want {
			t.Errorf("loopbackOnly(%s) = %v, want %v", addr, got, want)
		}
	}
}
