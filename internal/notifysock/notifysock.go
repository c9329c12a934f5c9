package notifysock

import (
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

// Socket is a listening unixgram socket. Each datagram it receives is one
// notification: newline-separated KEY=VALUE fields.
type Socket struct {
	// Addr is the value for NOTIFY_SOCKET.
	Addr string

	msgs chan map[string]string
}

// Listen listens at addr, a path or an abstract name starting with '@',
// until the test ends; its cleanup closes the socket and waits for the
// reader to exit.
func Listen(t testing.TB, addr string) *Socket {
	t.Helper()
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: addr, Net: "unixgram"})
	if err != nil {
		t.Fatalf("listening for notifications: %v", err)
	}
	s := &Socket{Addr: addr, msgs: make(chan map[string]string)}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() { s.read(conn, done) })
	t.Cleanup(func() {
		close(done)
		conn.Close()
		wg.Wait()
	})
	return s
}

// read delivers datagrams until conn is closed.
func (s *Socket) read(conn *net.UnixConn, done <-chan struct{}) {
	buf := make([]byte, 64<<10)
	for {
		n, err := conn.Read(buf)
		if err != nil {
			return
		}
		fields := map[string]string{}
		for line := range strings.SplitSeq(string(buf[:n]), "\n") {
			if k, v, ok := strings.Cut(line, "="); ok {
				fields[k] = v
			}
		}
		select {
		case s.msgs <- fields:
		case <-done:
			return
		}
	}
}

// Next returns the next notification's fields. It fails the test if none
// arrives within 30 seconds, or if exited (which may be nil) delivers
// first: the daemon ended without sending it.
func (s *Socket) Next(t testing.TB, exited <-chan struct{}) map[string]string {
	t.Helper()
	select {
	case m := <-s.msgs:
		return m
	case <-exited:
		t.Fatal("the daemon exited before notifying")
	case <-time.After(30 * time.Second):
		t.Fatal("no notification within 30s")
	}
	return nil
}
