package peerdial

import (
	"errors"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/peerstore"
	ma "github.com/multiformats/go-multiaddr"
	"go.uber.org/goleak"

	"github.com/p2ptun/p2ptun/internal/harness"
	"github.com/p2ptun/p2ptun/internal/testnet"
	"github.com/p2ptun/p2ptun/refusal"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

const timeout = 30 * time.Second // generous: only a failure waits for it

// unreachable returns a peer that h knows at a loopback port nothing
// listens on.
func unreachable(t *testing.T, h host.Host) peer.ID {
	t.Helper()
	p := harness.NewPeer(t)
	h.Peerstore().AddAddr(p, ma.StringCast(fmt.Sprintf("/ip4/127.0.0.1/tcp/%d", testnet.FreePort(t))), peerstore.PermanentAddrTTL)
	return p
}

// echoPair returns two hosts: a, which knows b's addresses, and b, which
// serves /x/echo.
func echoPair(t *testing.T) (a, b host.Host) {
	t.Helper()
	a, b = testnet.Host(t), testnet.Host(t)
	a.Peerstore().AddAddrs(b.ID(), b.Addrs(), peerstore.PermanentAddrTTL)
	b.SetStreamHandler("/x/echo", func(s network.Stream) {
		_, _ = io.Copy(s, s)
		_ = s.Close()
	})
	return a, b
}

// TestOpenStream: a stream opens to a peer that serves the protocol; a
// peer that does not is ErrNoListener, one that cannot be reached
// ErrUnreachable.
func TestOpenStream(t *testing.T) {
	a, b := echoPair(t)

	s, err := OpenStream(t.Context(), a, b.ID(), "/x/echo", timeout, timeout)
	if err != nil {
		t.Fatalf("OpenStream to a peer serving the protocol: %v", err)
	}
	harness.Echoes(t, s, "ping")
	_ = s.Reset()

	if _, err := OpenStream(t.Context(), a, b.ID(), "/x/none", timeout, timeout); !errors.Is(err, ErrNoListener) {
		t.Errorf("OpenStream for a protocol the peer does not serve: %v, want ErrNoListener", err)
	}
	if _, err := OpenStream(t.Context(), a, unreachable(t, a), "/x/echo", timeout, timeout); !errors.Is(err, ErrUnreachable) {
		t.Errorf("OpenStream to a peer nothing answers for: %v, want ErrUnreachable", err)
	}
}

// TestGateBacksOff: after a failed dial, a gate does not dial again before
// its backoff is over: it returns a *BackoffError at once, which still
// unwraps to ErrUnreachable.
func TestGateBacksOff(t *testing.T) {
	h := testnet.Host(t)
	p := unreachable(t, h)
	var g Gate
	err := g.Connect(t.Context(), h, p, timeout, time.Hour, time.Hour)
	var bo *BackoffError
	if !errors.Is(err, ErrUnreachable) || errors.As(err, &bo) {
		t.Fatalf("first dial: %v, want ErrUnreachable from a dial", err)
	}
	err = g.Connect(t.Context(), h, p, timeout, time.Hour, time.Hour)
	if !errors.As(err, &bo) || !errors.Is(err, ErrUnreachable) {
		t.Fatalf("during the backoff: %v, want a *BackoffError that is ErrUnreachable", err)
	}
}

// TestCold: a Cold stream on a connection just dialed carries bytes both
// ways; for a protocol the peer does not serve, its Handshake is
// ErrNoListener.
func TestCold(t *testing.T) {
	a, b := echoPair(t)
	c, err := DialCold(t.Context(), a, b.ID(), timeout)
	if err != nil || c == nil {
		t.Fatalf("DialCold: %v, %v; want a new connection", c, err)
	}
	if again, err := DialCold(t.Context(), a, b.ID(), timeout); again != nil || err != nil {
		t.Errorf("DialCold when connected: %v, %v; want nil, nil", again, err)
	}
	s, err := NewCold(t.Context(), c, "/x/echo", timeout)
	if err != nil {
		t.Fatal(err)
	}
	harness.Echoes(t, s, "ping")
	if err := s.Handshake(t.Context(), timeout); err != nil {
		t.Errorf("Handshake after the echo: %v", err)
	}
	_ = s.Reset()

	s, err = NewCold(t.Context(), c, "/x/none", timeout)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Handshake(t.Context(), timeout); !errors.Is(err, ErrNoListener) {
		t.Errorf("Handshake for a protocol the peer does not serve: %v, want ErrNoListener", err)
	}
}

// TestGateSettle: a cold dial's handshake that the peer's access policy
// refused counts as a failed dial (the next Connect backs off, without a
// dial); one the peer answered ends the backoff.
func TestGateSettle(t *testing.T) {
	h := testnet.Host(t)
	p := harness.NewPeer(t)
	var g Gate
	g.Settle(refusal.ClosedEarly(errors.New("connection reset")), time.Hour, time.Hour)
	err := g.Connect(t.Context(), h, p, timeout, time.Hour, time.Hour)
	if bo := (*BackoffError)(nil); !errors.As(err, &bo) || !errors.Is(err, refusal.ErrDenied) {
		t.Fatalf("Connect after a refused cold dial: %v, want a *BackoffError that is refusal.ErrDenied", err)
	}
	g.Settle(nil, time.Hour, time.Hour)
	if _, err := g.DialCold(t.Context(), h, unreachable(t, h), timeout, time.Hour, time.Hour); !errors.Is(err, ErrUnreachable) || errors.As(err, new(*BackoffError)) {
		t.Fatalf("DialCold after a settled dial: %v, want ErrUnreachable from a dial", err)
	}
}
