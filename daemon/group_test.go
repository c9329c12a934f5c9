//go:build linux

package daemon

import (
	"context"
	"errors"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/p2ptun/p2ptun/internal/harness"
	"github.com/p2ptun/p2ptun/internal/logbuf"
	"github.com/p2ptun/p2ptun/node"
)

// TestFailedStartRestoresTheAPIGroupsDirectory: a daemon with an [api]
// group whose start fails after its API socket was up (a --strict config
// tunnel that cannot start) leaves its home with the mode and group it
// had, not the group's 0750.
func TestFailedStartRestoresTheAPIGroupsDirectory(t *testing.T) {
	var logs logbuf.Buffer
	cfg := withHome(t, busyForward(t), &logs)
	mode, gid := harness.ModeAndGroup(t, cfg.Home)
	cfg.Config.API.Group = strconv.Itoa(harness.OtherGroup(t, gid))
	cfg.Strict = true
	d, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Run(context.Background()); !errors.Is(err, node.ErrAddrInUse) {
		t.Fatalf("Run = %v, want %v:\n%s", err, node.ErrAddrInUse, &logs)
	}
	if m, g := harness.ModeAndGroup(t, cfg.Home); m != mode || g != gid {
		t.Errorf("after a failed start the home is %#o group %d, want %#o group %d as it was", m, g, mode, gid)
	}
	gone(t, filepath.Join(cfg.Home, "api.sock"))
}
