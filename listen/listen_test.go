package listen

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/peerstore"
	"go.uber.org/goleak"

	"github.com/p2ptun/p2ptun/internal/harness"
	"github.com/p2ptun/p2ptun/internal/logbuf"
	"github.com/p2ptun/p2ptun/internal/testnet"
	"github.com/p2ptun/p2ptun/refusal"
	"github.com/p2ptun/p2ptun/registry"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const proto = "/x/test"

// newHost starts a libp2p host on a loopback TCP port and closes it at
// cleanup.
func newHost(t *testing.T) host.Host {
	t.Helper()
	h, err := libp2p.New(libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"), libp2p.DisableMetrics())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	return h
}

// tunnel is a listener on one host and a second host that opens streams
// to it.
type tunnel struct {
	l       *Listener
	server  host.Host
	client  host.Host
	streams *registry.Streams
	failed  chan registry.Failure // the Failed hook's reports
	logs    *logbuf.Buffer
}

// startListener starts a listener with cfg (Protocol, Streams and Logger
// filled in) on a fresh host, and a client host that knows its address.
// The listener is closed at cleanup.
func startListener(t *testing.T, cfg Config) *tunnel {
	t.Helper()
	tn := &tunnel{server: newHost(t), client: newHost(t), streams: &registry.Streams{}, failed: make(chan registry.Failure, 16), logs: &logbuf.Buffer{}}
	tn.streams.SetHooks(registry.Hooks{Failed: func(f registry.Failure) { tn.failed <- f }})
	tn.client.Peerstore().AddAddrs(tn.server.ID(), tn.server.Addrs(), peerstore.PermanentAddrTTL)
	cfg.Protocol, cfg.Streams = proto, tn.streams
	cfg.Logger = slog.New(slog.NewTextHandler(tn.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	l, err := New(tn.server, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	tn.l = l
	return tn
}

// open opens a stream from the client host with a 10 s deadline.
func (tn *tunnel) open(t *testing.T) network.Stream {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	s, err := tn.client.NewStream(ctx, tn.server.ID(), proto)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Reset() })
	if err := s.SetDeadline(time.Now().Add(10 * time.Second)); err != nil {
		t.Fatal(err)
	}
	return s
}

// refusedWith sends a byte on a new stream and checks that the listener
// resets it with cause's code and reports the failure to the registry.
func (tn *tunnel) refusedWith(t *testing.T, cause refusal.Cause) {
	t.Helper()
	tn.reset(t, cause)
	if f := tn.nextFailure(t); f.Cause != string(cause) || f.Kind != registry.KindListen || f.Peer != tn.client.ID().String() || f.Protocol != proto {
		t.Fatalf("failure reported as %+v, want cause %s from %s", f, cause, tn.client.ID())
	}
}

// nextFailure returns the next failure the registry's Failed hook was
// told of; it fails the test rather than hang if none comes.
func (tn *tunnel) nextFailure(t *testing.T) registry.Failure {
	t.Helper()
	select {
	case f := <-tn.failed:
		return f
	case <-time.After(10 * time.Second):
		t.Fatal("no failure reported within 10s")
		return registry.Failure{}
	}
}

// reset sends a byte on a new stream and checks that the listener resets
// it with cause's code.
func (tn *tunnel) reset(t *testing.T, cause refusal.Cause) {
	t.Helper()
	s := tn.open(t)
	s.Write([]byte("x"))
	_, err := io.ReadAll(s)
	if r := refusal.Of(err); r == nil || r.Cause != cause {
		t.Fatalf("stream ended with %v (refusal %v), want a reset with the %s code", err, r, cause)
	}
}

// countingDial counts the listener's target dials.
func countingDial(n *atomic.Int32) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		n.Add(1)
		return (&net.Dialer{}).DialContext(ctx, network, addr)
	}
}

func TestAllowlistRefusesWithDeniedCode(t *testing.T) {
	var dials atomic.Int32
	stranger := harness.NewPeer(t)
	tn := startListener(t, Config{Target: harness.TCPMultiaddr(t, testnet.Serve(t, testnet.Echo)), Allow: []peer.ID{stranger}, Dial: countingDial(&dials)})
	tn.refusedWith(t, refusal.Denied)
	if n := dials.Load(); n != 0 {
		t.Fatalf("target dialled %d times for a refused peer, want 0", n)
	}
	if got := tn.streams.List(); len(got) != 0 {
		t.Fatalf("a refused stream is registered: %+v", got)
	}

	// Once allowed, the same peer is served.
	if !tn.l.Allow(tn.client.ID()) {
		t.Fatal("Allow reported the peer as already allowed")
	}
	harness.Echoes(t, tn.open(t), "ping")
}

func TestRateLimitRefusesWithItsCode(t *testing.T) {
	// One stream now, the next in 100 s: the second is always over.
	tn := startListener(t, Config{Target: harness.TCPMultiaddr(t, testnet.Serve(t, testnet.Echo)), AllowAll: true, PeerRate: 0.01, PeerBurst: 1})
	harness.Echoes(t, tn.open(t), "first")
	tn.refusedWith(t, refusal.RateLimited)
}

func TestTargetDialFailureResetsWithCause(t *testing.T) {
	t.Run("refused", func(t *testing.T) {
		tn := startListener(t, Config{Target: harness.TCPMultiaddr(t, "127.0.0.1:"+strconv.Itoa(testnet.FreePort(t))), AllowAll: true})
		tn.refusedWith(t, refusal.TargetDial)
	})
	t.Run("timeout", func(t *testing.T) {
		// The dial blocks until the listener's dial timeout ends it.
		hang := func(ctx context.Context, _, _ string) (net.Conn, error) {
			<-ctx.Done()
			return nil, ctx.Err()
		}
		tn := startListener(t, Config{Target: harness.TCPMultiaddr(t, "127.0.0.1:1"), AllowAll: true, Dial: hang, DialTimeout: time.Millisecond})
		tn.refusedWith(t, refusal.TargetTimeout)
	})
}

func TestReportPeerIDComesFirst(t *testing.T) {
	lines := make(chan string, 1)
	target := testnet.Serve(t, func(c *net.TCPConn) {
		b, _ := io.ReadAll(c)
		lines <- string(b)
	})
	tn := startListener(t, Config{Target: harness.TCPMultiaddr(t, target), AllowAll: true, ReportPeerID: true})
	s := tn.open(t)
	io.WriteString(s, "data")
	s.CloseWrite()
	select {
	case got := <-lines:
		if want := tn.client.ID().String() + "\ndata"; got != want {
			t.Fatalf("target read %q, want %q", got, want)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("target read nothing")
	}
}

// TestHalfCloseThroughListener: the client writes, half-closes, and still
// reads the whole reply, which the target sends only after the EOF.
func TestHalfCloseThroughListener(t *testing.T) {
	tn := startListener(t, Config{Target: harness.TCPMultiaddr(t, replyAfterEOF(t)), AllowAll: true})
	tn.halfCloses(t, tn.open(t))
}

// replyAfterEOF serves a target that reads its client to EOF, then
// replies "reply to " and what it read, and half-closes; it returns its
// host:port.
func replyAfterEOF(t *testing.T) string {
	return testnet.Serve(t, func(c *net.TCPConn) {
		b, err := io.ReadAll(c)
		if err != nil {
			return
		}
		io.WriteString(c, "reply to "+string(b))
		c.CloseWrite()
	})
}

// halfCloses writes a request on s (bridged to a replyAfterEOF target),
// half-closes it, and checks that the whole reply comes, then a clean
// EOF, and that the stream leaves the registry.
func (tn *tunnel) halfCloses(t *testing.T, s network.Stream) {
	t.Helper()
	io.WriteString(s, "request")
	if err := s.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(s)
	if err != nil || string(got) != "reply to request" {
		t.Fatalf("reply = %q, %v; want %q and a clean EOF", got, err, "reply to request")
	}
	if err := tn.streams.WaitIdle(t.Context()); err != nil {
		t.Fatal(err)
	}
}

// TestCloseEndsStreams: Close resets the live streams, empties the
// registry and returns after the handlers; a listener that stops
// accepting refuses new streams with the Closing code.
func TestCloseEndsStreams(t *testing.T) {
	tn := startListener(t, Config{Target: harness.TCPMultiaddr(t, testnet.Serve(t, testnet.Echo)), AllowAll: true})
	live := tn.open(t)
	harness.Echoes(t, live, "ping")
	if n := len(tn.streams.List()); n != 1 {
		t.Fatalf("%d streams registered, want 1", n)
	}

	tn.l.StopAccepting()
	tn.reset(t, refusal.Closing)     // not a failure: the tunnel is going away
	harness.Echoes(t, live, "still") // draining leaves live streams running

	if err := tn.l.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadAll(live); !errors.Is(err, network.ErrReset) {
		t.Fatalf("live stream after Close ended with %v, want a reset", err)
	}
	if got := tn.streams.List(); len(got) != 0 {
		t.Fatalf("streams still registered after Close: %+v", got)
	}
	if err := tn.l.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}
