package harness

import (
	"errors"
	"fmt"
	"io"
	"net"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"go.uber.org/goleak"

	"github.com/p2ptun/p2ptun/internal/testnet"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestIsReset(t *testing.T) {
	// The server aborts each connection once it has read a byte: SO_LINGER
	// 0 makes Close send a RST.
	addr := testnet.Serve(t, func(c *net.TCPConn) {
		io.ReadFull(c, make([]byte, 1))
		c.SetLinger(0)
	})
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	_, err = io.ReadAll(c)
	if !IsReset(err) {
		t.Fatalf("read after the peer's abort: %v, want a reset", err)
	}
	if IsReset(io.EOF) || IsReset(nil) || IsReset(errors.New("other")) {
		t.Fatal("IsReset is true for an error that is not a reset")
	}
}

func TestAddresses(t *testing.T) {
	m := TCPMultiaddr(t, "127.0.0.1:4001")
	if m.String() != "/ip4/127.0.0.1/tcp/4001" {
		t.Fatalf("TCPMultiaddr = %s", m)
	}
	if got := HostPort(t, " /ip4/127.0.0.1/tcp/4001\n"); got != "127.0.0.1:4001" {
		t.Fatalf("HostPort = %s", got)
	}
}

func TestNewPeerID(t *testing.T) {
	a, b := NewPeerID(t), NewPeerID(t)
	if a == b {
		t.Fatal("two new peer IDs are the same")
	}
	if _, err := peer.Decode(a); err != nil {
		t.Fatalf("NewPeerID = %q: %v", a, err)
	}
}

func TestUntilReturnsOnceTrue(t *testing.T) {
	n := 0
	Until(t, time.Minute, "the third look", func() bool { n++; return n == 3 })
	if n != 3 {
		t.Fatalf("cond called %d times, want 3", n)
	}
}

func TestUntilStateReturnsOnceTrue(t *testing.T) {
	n := 0
	UntilState(t, time.Minute, "the third look", func() (bool, string) { n++; return n == 3, fmt.Sprintf("%d looks", n) })
	if n != 3 {
		t.Fatalf("cond called %d times, want 3", n)
	}
}
