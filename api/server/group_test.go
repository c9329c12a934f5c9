//go:build linux

package server

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/p2ptun/p2ptun/api"
	"github.com/p2ptun/p2ptun/internal/harness"
	"github.com/p2ptun/p2ptun/internal/testnet"
)

// TestFailedStartRestoresSocketDir: a server with an operator group
// whose Start fails (another daemon answers on the socket) leaves the
// socket's directory with the mode and group it found, not the group's
// 0750; RestoreSocketDir does the same for a Start that succeeded (a
// setgid bit included).
func TestFailedStartRestoresSocketDir(t *testing.T) {
	n := newNode(t)
	p := testnet.SocketPath(t)
	dir := filepath.Dir(p)
	if err := os.Chmod(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	mode, gid := harness.ModeAndGroup(t, dir)
	ops := harness.OtherGroup(t, gid)
	startServer(t, n, p) // the daemon already running, owner-only
	ctx := testContext(t)

	second := New(n, p, quiet)
	second.AllowedGID = ops
	if err := second.Start(ctx); !errors.Is(err, api.ErrDaemonRunning) {
		t.Fatalf("second Start = %v, want ErrDaemonRunning", err)
	}
	if m, g := harness.ModeAndGroup(t, dir); m != mode || g != gid {
		t.Errorf("after a failed start the directory is %#o group %d, want %#o group %d as it was", m, g, mode, gid)
	}
	if err := second.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if err := second.RestoreSocketDir(); err != nil {
		t.Errorf("RestoreSocketDir after a failed Start: %v", err)
	}

	t.Run("RestoreSocketDir", func(t *testing.T) {
		p := testnet.SocketPath(t)
		dir := filepath.Dir(p)
		if err := os.Chmod(dir, 0o700|os.ModeSetgid); err != nil {
			t.Fatal(err)
		}
		mode, gid := harness.ModeAndGroup(t, dir)
		s := New(n, p, quiet)
		s.AllowedGID = harness.OtherGroup(t, gid)
		if err := s.Start(ctx); err != nil {
			t.Fatal(err)
		}
		if m, g := harness.ModeAndGroup(t, dir); m != 0o750 || g != s.AllowedGID {
			t.Fatalf("a started server's directory is %#o group %d, want 0750 group %d", m, g, s.AllowedGID)
		}
		if err := s.Close(ctx); err != nil {
			t.Fatal(err)
		}
		if err := s.RestoreSocketDir(); err != nil {
			t.Fatal(err)
		}
		if m, g := harness.ModeAndGroup(t, dir); m != mode || g != gid {
			t.Errorf("after RestoreSocketDir the directory is %#o group %d, want %#o group %d", m, g, mode, gid)
		}
	})
}
