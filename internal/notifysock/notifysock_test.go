package notifysock

import (
	"net"
	"os"
	"path/filepath"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestNextAfterExit: a notification sent just before the sender exits is
// still returned, never reported as missing.
func TestNextAfterExit(t *testing.T) {
	dir, err := os.MkdirTemp("", "nsock")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	s := Listen(t, filepath.Join(dir, "n.sock"))
	for range 50 {
		c, err := net.Dial("unixgram", s.Addr)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Write([]byte("STOPPING=1\nSTATUS=bye")); err != nil {
			t.Fatal(err)
		}
		c.Close()
		exited := make(chan struct{})
		close(exited)
		if m := s.Next(t, exited); m["STOPPING"] != "1" || m["STATUS"] != "bye" {
			t.Fatalf("Next = %q", m)
		}
	}
}
