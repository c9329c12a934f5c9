package daemon

import (
	"errors"
	"testing"
)

// TestNoDaemonOnWindows: New fails closed, before it reads or writes a
// key, with the line that says where to run the daemon.
func TestNoDaemonOnWindows(t *testing.T) {
	home := t.TempDir()
	if _, err := New(Config{Home: home}); !errors.Is(err, errPlatform) {
		t.Fatalf("New on windows = %v, want %v", err, errPlatform)
	}
}
