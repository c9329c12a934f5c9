package notifysock

import (
	"errors"
	"net"
	"os"
	"strings"
	"testing"
	"time"
)

// Socket is a listening unixgram socket. Each datagram it receives is one
// notification: newline-separated KEY=VALUE fields.
type Socket struct {
	// Addr is the value for NOTIFY_SOCKET.
	Addr string

	conn *net.UnixConn
}

// Listen listens at addr, a path or an abstract name starting with '@',
// until the test ends.
func Listen(t testing.TB, addr string) *Socket {
	t.Helper()
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: addr, Net: "unixgram"})
	if err != nil {
		t.Fatalf("listening for notifications: %v", err)
	}
	t.Cleanup(func() { conn.Close() })
	return &Socket{Addr: addr, conn: conn}
}

// Next returns the next notification's fields. It fails the test if none
// arrives within 30 seconds, or if exited (which may be nil) is closed
// and none is queued: the daemon ended without sending one. A daemon's
// datagrams are queued on the socket by the time its send returns, so a
// notification sent just before exiting is never missed.
func (s *Socket) Next(t testing.TB, exited <-chan struct{}) map[string]string {
	t.Helper()
	buf := make([]byte, 64<<10)
	deadline := time.Now().Add(30 * time.Second)
	for {
		gone := false
		select {
		case <-exited:
			gone = true
		default:
		}
		// Wait in short slices so that an exit is noticed; once the
		// sender is gone, one more read collects what it queued.
		if err := s.conn.SetReadDeadline(time.Now().Add(50 * time.Millisecond)); err != nil {
			t.Fatal(err)
		}
		n, err := s.conn.Read(buf)
		switch {
		case err == nil:
			return parse(string(buf[:n]))
		case !errors.Is(err, os.ErrDeadlineExceeded):
			t.Fatalf("reading a notification: %v", err)
		case gone:
			t.Fatal("the daemon exited before notifying")
		case time.Now().After(deadline):
			t.Fatal("no notification within 30s")
		}
	}
}

func parse(msg string) map[string]string {
	fields := map[string]string{}
	for line := range strings.SplitSeq(msg, "\n") {
		if k, v, ok := strings.Cut(line, "="); ok {
			fields[k] = v
		}
	}
	return fields
}
