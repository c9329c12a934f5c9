package server

import (
	"net"
	"os"
	"syscall"
	"testing"
)

// emfileListener fails its first Accept as a process out of descriptors
// does, then hands out one end of a pipe.
type emfileListener struct {
	net.Listener
	calls int
	conn  net.Conn
}

func (l *emfileListener) Accept() (net.Conn, error) {
	l.calls++
	if l.calls == 1 {
		return nil, &net.OpError{Op: "accept", Net: "unix", Err: os.NewSyscallError("accept4", syscall.EMFILE)}
	}
	return l.conn, nil
}

func (l *emfileListener) Close() error { return nil }

func TestReserveListenerAcceptsWhenOutOfFDs(t *testing.T) {
	c1, c2 := net.Pipe()
	defer c2.Close()
	l := withReserve(&emfileListener{conn: c1})
	defer l.Close()
	if n := len(l.spare); n != fdReserve {
		t.Fatalf("reserve holds %d descriptors, want %d", n, fdReserve)
	}
	c, err := l.Accept()
	if err != nil {
		t.Fatalf("Accept out of descriptors: %v, want the waiting connection", err)
	}
	if n := len(l.spare); n != 0 {
		t.Fatalf("reserve after lending: %d descriptors, want 0", n)
	}
	// Out again while the reserve is lent: the error, not a hang.
	l.Listener.(*emfileListener).calls = 0
	if _, err := l.Accept(); !outOfFDs(err) {
		t.Fatalf("Accept with the reserve lent: %v, want EMFILE", err)
	}
	c.Close()
	if n := len(l.spare); n != fdReserve {
		t.Fatalf("reserve after the connection closed: %d descriptors, want %d", n, fdReserve)
	}
}
