package streams

import (
	"context"
	"io"
	"net"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/p2ptun/p2ptun/internal/harness"
	"golang.org/x/sys/unix"
)

// tcpState is c's TCP state (TCP_INFO's tcpi_state).
func tcpState(t *testing.T, c *net.TCPConn) uint8 {
	t.Helper()
	rc, err := c.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var info *unix.TCPInfo
	var gerr error
	if err := rc.Control(func(fd uintptr) { info, gerr = unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO) }); err != nil || gerr != nil {
		t.Fatalf("TCP_INFO: %v %v", err, gerr)
	}
	return info.State
}

// TestBridgeResetTakenByAWriteIsStillAReset is the race behind a target
// crash seen as a clean close: the target's RST leaves one pending error on
// the socket, the copy writing to it takes that error, and the copy reading
// from it then reads a bare EOF. Passed on as a FIN, the client would see a
// clean end of a connection that failed. Here the write takes the error
// before the bridge starts, so the read's EOF comes first every time.
func TestBridgeResetTakenByAWriteIsStillAReset(t *testing.T) {
	left, a := tcpPair(t)
	right, b := tcpPair(t)
	_ = right.SetLinger(0)
	right.Close()
	harness.Until(t, 10*time.Second, "the RST to reach b", func() bool { return tcpState(t, b) == tcpClose })
	if _, err := b.Write([]byte("x")); !harness.IsReset(err) {
		t.Fatalf("write to the reset socket: %v, want ECONNRESET (it takes the pending error)", err)
	}

	done := make(chan error, 1)
	go func() {
		_, _, err := bridge(context.Background(), a, b, Counters{})
		done <- err
	}()
	_ = left.SetReadDeadline(time.Now().Add(time.Minute))
	if _, err := io.ReadAll(left); !harness.IsReset(err) {
		t.Fatalf("left read after b was reset: err = %v, want a connection reset (never a clean EOF)", err)
	}
	if err := <-done; err == nil {
		t.Fatal("the bridge reported a clean end after a reset")
	}
}

// TestPeerResetTellsFINFromRST checks peerReset's three cases on real
// sockets: a FIN (CLOSE_WAIT) is not a reset, a RST is, and a socket whose
// write half we closed first is never called reset.
func TestPeerResetTellsFINFromRST(t *testing.T) {
	raw := func(c *net.TCPConn) syscall.RawConn {
		rc, err := c.SyscallConn()
		if err != nil {
			t.Fatal(err)
		}
		return rc
	}
	var unset, set atomic.Bool
	set.Store(true)

	fin, x := tcpPair(t)
	fin.Close()
	harness.Until(t, 10*time.Second, "the FIN to arrive", func() bool { return tcpState(t, x) == unix.BPF_TCP_CLOSE_WAIT })
	if peerReset(raw(x), &unset) {
		t.Error("a FIN was called a reset")
	}

	rst, y := tcpPair(t)
	_ = rst.SetLinger(0)
	rst.Close()
	harness.Until(t, 10*time.Second, "the RST to arrive", func() bool { return tcpState(t, y) == tcpClose })
	if !peerReset(raw(y), &unset) {
		t.Error("a RST was not called a reset")
	}
	if peerReset(raw(y), &set) {
		t.Error("a socket whose write half we closed was called reset")
	}
}
