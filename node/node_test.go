package node

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	ma "github.com/multiformats/go-multiaddr"
	"go.uber.org/goleak"

	"github.com/p2ptun/p2ptun/config"
	"github.com/p2ptun/p2ptun/config/homedir"
	"github.com/p2ptun/p2ptun/internal/harness"
	"github.com/p2ptun/p2ptun/internal/logbuf"
	"github.com/p2ptun/p2ptun/internal/testnet"
	"github.com/p2ptun/p2ptun/p2phost"
	"github.com/p2ptun/p2ptun/spec"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// logBuf is a goroutine-safe log sink.
type logBuf = logbuf.Buffer

type testNode struct {
	*Node
	logs *logBuf
}

// fullAddr is the node's first address with /p2p/ID.
func (n testNode) fullAddr() string { return n.Identity().Addresses[0] }
func (n testNode) id() string       { return n.Identity().ID }

func newNode(t *testing.T) testNode { return newNodeWith(t, nil) }

// newNodeWith starts a node on loopback with short timeouts and a log
// buffer, after tweak (if not nil) has adjusted its options.
func newNodeWith(t *testing.T, tweak func(*Options)) testNode {
	t.Helper()
	return buildNode(t, tweak, nil)
}

// buildNode is newNodeWith that calls before, if not nil, with the node
// before it starts (to subscribe to its events from the first).
func buildNode(t *testing.T, tweak func(*Options), before func(*Node)) testNode {
	t.Helper()
	sk, err := homedir.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	logs := &logBuf{}
	opts := Options{Config: p2phost.Config{
		Key:         sk,
		ListenAddrs: []ma.Multiaddr{ma.StringCast("/ip4/127.0.0.1/tcp/0")},
		Timeouts: config.Timeouts{
			Dial:       config.D(5 * time.Second),
			StreamOpen: config.D(5 * time.Second),
			TargetDial: config.D(2 * time.Second),
		},
		UserAgent: "p2ptun/test",
		Logger:    slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}}
	if tweak != nil {
		tweak(&opts)
	}
	n, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	if before != nil {
		before(n)
	}
	if err := n.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := n.Close(); err != nil {
			t.Errorf("closing node: %v", err)
		}
	})
	return testNode{n, logs}
}

// server runs handle for every connection accepted on a loopback port and
// stops (waiting for its handlers) at cleanup.
// server and echo are the shared loopback test servers.
var (
	server = func(t *testing.T, handle func(*net.TCPConn)) string { return testnet.Serve(t, handle) }
	echo   = testnet.Echo
)

// freePort returns a loopback host:port that nothing listens on.
func freePort(t *testing.T) string {
	return fmt.Sprintf("127.0.0.1:%d", testnet.FreePort(t))
}

// tunnel opens B.listen(proto → target) allowing A, and A.forward on a free
// port; it returns the forward's host:port.
func tunnel(t *testing.T, a, b testNode, proto, target string) string {
	t.Helper()
	ctx := context.Background()
	if _, err := b.listenReq(ctx, spec.Request{Protocol: proto, Target: target, Allow: []string{a.id()}}); err != nil {
		t.Fatal(err)
	}
	l, err := a.forwardReq(ctx, spec.Request{Protocol: proto, ListenAddress: "/ip4/127.0.0.1/tcp/0", Peer: b.fullAddr()})
	if err != nil {
		t.Fatal(err)
	}
	return hostPort(t, l.ListenAddress)
}

func hostPort(t *testing.T, m string) string {
	t.Helper()
	a, err := ma.NewMultiaddr(m)
	if err != nil {
		t.Fatal(err)
	}
	ip, _ := a.ValueForProtocol(ma.P_IP4)
	port, _ := a.ValueForProtocol(ma.P_TCP)
	if port == "0" || port == "" {
		t.Fatalf("address %s has no real port", m)
	}
	return net.JoinHostPort(ip, port)
}

func dial(t *testing.T, addr string) *net.TCPConn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c.(*net.TCPConn)
}

// expectReset connects to addr and asserts that the connection ends with a
// reset (possibly before connect returns), never with a clean EOF.
func expectReset(t *testing.T, addr string) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err == nil {
		defer c.Close()
		// Bounded: a connection that is bridged instead fails the test
		// rather than hanging it.
		_ = c.SetDeadline(time.Now().Add(30 * time.Second))
		_, err = io.ReadAll(c)
	}
	if !harness.IsReset(err) {
		t.Fatalf("client: err = %v, want a connection reset, never a clean close", err)
	}
}

func TestEchoRoundTrip(t *testing.T) {
	a, b := newNode(t), newNode(t)
	fwd := tunnel(t, a, b, "/x/echo", server(t, echo))
	for i := range 3 { // several connections over the same peer connection
		c := dial(t, fwd)
		msg := fmt.Appendf(nil, "hello %d through the tunnel", i)
		if _, err := c.Write(msg); err != nil {
			t.Fatal(err)
		}
		c.CloseWrite()
		got, err := io.ReadAll(c)
		if err != nil || !bytes.Equal(got, msg) {
			t.Fatalf("echo = %q, %v; want %q", got, err, msg)
		}
	}
}

// stream of n deterministic pseudo-random bytes.
func prng(seed uint64, n int64) io.Reader {
	return io.LimitReader(rand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8)}), n)
}

func TestLargeTransferBothWaysWithChecksums(t *testing.T) {
	const size = 64 << 20
	want := func(seed uint64) [32]byte {
		h := sha256.New()
		io.Copy(h, prng(seed, size))
		return [32]byte(h.Sum(nil))
	}
	upWant, downWant := want(1), want(2)

	type sum struct {
		h   [32]byte
		err error
	}
	serverGot := make(chan sum, 1)
	target := server(t, func(c *net.TCPConn) {
		var wg sync.WaitGroup
		wg.Go(func() {
			h := sha256.New()
			_, err := io.Copy(h, c)
			serverGot <- sum{[32]byte(h.Sum(nil)), err}
		})
		io.Copy(c, prng(2, size))
		c.CloseWrite()
		wg.Wait()
	})
	a, b := newNode(t), newNode(t)
	c := dial(t, tunnel(t, a, b, "/x/bulk", target))

	errc := make(chan error, 1)
	go func() {
		_, err := io.Copy(c, prng(1, size))
		errc <- errors.Join(err, c.CloseWrite())
	}()
	h := sha256.New()
	n, err := io.Copy(h, c)
	if err != nil {
		t.Fatal(err)
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if n != size || [32]byte(h.Sum(nil)) != downWant {
		t.Fatalf("client received %d bytes with a wrong checksum", n)
	}
	if got := <-serverGot; got.err != nil || got.h != upWant {
		t.Fatalf("target received wrong bytes (err %v)", got.err)
	}
}

func TestHalfCloseClientStillGetsWholeReply(t *testing.T) {
	reply := bytes.Repeat([]byte("reply-"), 200_000)
	target := server(t, func(c *net.TCPConn) {
		req, err := io.ReadAll(c) // until the client's half-close
		if err != nil || string(req) != "request" {
			return
		}
		c.Write(reply)
		c.CloseWrite()
	})
	a, b := newNode(t), newNode(t)
	c := dial(t, tunnel(t, a, b, "/x/half", target))
	if _, err := c.Write([]byte("request")); err != nil {
		t.Fatal(err)
	}
	if err := c.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(c)
	if err != nil {
		t.Fatalf("reading reply: %v", err)
	}
	if !bytes.Equal(got, reply) {
		t.Fatalf("got %d of %d reply bytes", len(got), len(reply))
	}
}

func TestRefusedTargetResetsClientAndLogs(t *testing.T) {
	a, b := newNode(t), newNode(t)
	expectReset(t, tunnel(t, a, b, "/x/refused", freePort(t)))
	logs := b.logs.String()
	for _, want := range []string{"target dial failed", "peer=" + a.id(), "proto=/x/refused", "connection refused"} {
		if !strings.Contains(logs, want) {
			t.Errorf("listener log lacks %q:\n%s", want, logs)
		}
	}
}

func TestUnreachablePeer(t *testing.T) {
	a, b := newNode(t), newNode(t)
	bID := b.id()
	dead := "/ip4/127.0.0.1/tcp/" + strings.Split(freePort(t), ":")[1] + "/p2p/" + bID
	bind := freePort(t)

	t.Run("forward fails and binds nothing", func(t *testing.T) {
		_, err := a.forwardReq(context.Background(), spec.Request{Protocol: "/x/web", ListenAddress: bind, Peer: dead})
		if !errors.Is(err, ErrUnreachable) {
			t.Fatalf("err = %v, want ErrUnreachable", err)
		}
		if !strings.Contains(err.Error(), bID) || strings.Contains(err.Error(), "\n") {
			t.Errorf("error should name the peer on one line: %q", err)
		}
		if n := len(a.Listeners()); n != 0 {
			t.Fatalf("%d listeners registered after a failed forward", n)
		}
		ln, err := net.Listen("tcp", bind)
		if err != nil {
			t.Fatalf("port %s still bound after failed forward: %v", bind, err)
		}
		ln.Close()
	})

	t.Run("lazy forward resets the client and logs", func(t *testing.T) {
		c := newNode(t) // a node with no addresses for b at all
		l, err := c.forwardReq(context.Background(), spec.Request{Protocol: "/x/web", ListenAddress: "127.0.0.1:0", Peer: "/p2p/" + bID, Lazy: true})
		if err != nil {
			t.Fatal(err)
		}
		expectReset(t, hostPort(t, l.ListenAddress))
		logs := c.logs.String()
		for _, want := range []string{"stream open failed", "peer=" + bID, "proto=/x/web", "peer unreachable"} {
			if !strings.Contains(logs, want) {
				t.Errorf("forward log lacks %q:\n%s", want, logs)
			}
		}
	})
}

func TestUnauthorizedPeerIsReset(t *testing.T) {
	a, b, other := newNode(t), newNode(t), newNode(t)
	ctx := context.Background()
	if _, err := b.listenReq(ctx, spec.Request{Protocol: "/x/private", Target: server(t, echo), Allow: []string{other.id()}}); err != nil {
		t.Fatal(err)
	}
	l, err := a.forwardReq(ctx, spec.Request{Protocol: "/x/private", ListenAddress: "127.0.0.1:0", Peer: b.fullAddr()})
	if err != nil {
		t.Fatal(err)
	}
	expectReset(t, hostPort(t, l.ListenAddress))
	logs := b.logs.String()
	if got := strings.Count(logs, "refused stream"); got != 1 {
		t.Errorf("want exactly one refusal line, got %d:\n%s", got, logs)
	}
	if !strings.Contains(logs, "peer="+a.id()) {
		t.Errorf("refusal does not name the peer:\n%s", logs)
	}
	if n := len(b.Streams()); n != 0 {
		t.Errorf("refused stream was registered (%d streams)", n)
	}
}

func TestListenRequiresAnAllowlist(t *testing.T) {
	b := newNode(t)
	_, err := b.listenReq(context.Background(), spec.Request{Protocol: "/x/web", Target: "127.0.0.1:80"})
	if !errors.Is(err, ErrUsage) || !strings.Contains(err.Error(), "--allow-all") {
		t.Fatalf("err = %v, want a usage error that mentions --allow-all", err)
	}
	if len(b.Listeners()) != 0 {
		t.Fatal("listener registered despite the error")
	}
}

func TestCustomProtocolRule(t *testing.T) {
	a, b := newNode(t), newNode(t)
	ctx := context.Background()
	target := server(t, echo)
	_, err := b.listenReq(ctx, spec.Request{Protocol: "/custom/1.0", Target: target, AllowAll: true})
	if !errors.Is(err, ErrUsage) || !strings.Contains(err.Error(), "--allow-custom-protocol") {
		t.Fatalf("listen err = %v, want a usage error naming --allow-custom-protocol", err)
	}
	_, err = a.forwardReq(ctx, spec.Request{Protocol: "/custom/1.0", ListenAddress: "127.0.0.1:0", Peer: b.fullAddr()})
	if !errors.Is(err, ErrUsage) {
		t.Fatalf("forward err = %v, want ErrUsage", err)
	}
	if _, err := b.listenReq(ctx, spec.Request{Protocol: "/ipfs/id/1.0.0", Target: target, AllowAll: true, AllowCustomProtocol: true}); !errors.Is(err, ErrUsage) {
		t.Fatalf("taking over libp2p's identify: err = %v, want ErrUsage", err)
	}
	if _, err := b.listenReq(ctx, spec.Request{Protocol: "/custom/1.0", Target: target, AllowAll: true, AllowCustomProtocol: true}); err != nil {
		t.Fatal(err)
	}
	l, err := a.forwardReq(ctx, spec.Request{Protocol: "/custom/1.0", ListenAddress: "127.0.0.1:0", Peer: b.fullAddr(), AllowCustomProtocol: true})
	if err != nil {
		t.Fatal(err)
	}
	c := dial(t, hostPort(t, l.ListenAddress))
	c.Write([]byte("ok"))
	c.CloseWrite()
	if got, err := io.ReadAll(c); err != nil || string(got) != "ok" {
		t.Fatalf("echo = %q, %v", got, err)
	}
}

func TestNoListenerForProtocol(t *testing.T) {
	a, b := newNode(t), newNode(t)
	l, err := a.forwardReq(context.Background(), spec.Request{Protocol: "/x/nobody", ListenAddress: "127.0.0.1:0", Peer: b.fullAddr()})
	if err != nil {
		t.Fatal(err)
	}
	expectReset(t, hostPort(t, l.ListenAddress))
	if !strings.Contains(a.logs.String(), "has no listener for the protocol") {
		t.Errorf("log does not say the peer has no such listener:\n%s", a.logs.String())
	}
}

// openStream opens a tunnelled connection and proves data flows.
func openStream(t *testing.T, addr string) *net.TCPConn {
	t.Helper()
	c := dial(t, addr)
	if _, err := c.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(c, make([]byte, 4)); err != nil {
		t.Fatal(err)
	}
	return c
}

func TestClosingListenersEndsTheirStreams(t *testing.T) {
	ctx := context.Background()
	t.Run("forward side", func(t *testing.T) {
		a, b := newNode(t), newNode(t)
		fwd := tunnel(t, a, b, "/x/a", server(t, echo))
		c := openStream(t, fwd)
		if len(a.Streams()) != 1 {
			t.Fatalf("streams = %v", a.Streams())
		}
		// host:port selects the same forward as its multiaddr would.
		n, err := a.CloseListeners(ctx, CloseRequest{ListenAddress: fwd})
		if err != nil || n != 1 {
			t.Fatalf("close = %d, %v", n, err)
		}
		if len(a.Streams()) != 0 || len(a.Listeners()) != 0 {
			t.Fatalf("after close: %d streams, %d listeners", len(a.Streams()), len(a.Listeners()))
		}
		if _, err := io.ReadAll(c); !harness.IsReset(err) {
			t.Fatalf("client read: err = %v, want a reset", err)
		}
	})
	t.Run("listen side", func(t *testing.T) {
		a, b := newNode(t), newNode(t)
		target := server(t, echo)
		c := openStream(t, tunnel(t, a, b, "/x/b", target))
		n, err := b.CloseListeners(ctx, CloseRequest{TargetAddress: target})
		if err != nil || n != 1 {
			t.Fatalf("close = %d, %v", n, err)
		}
		if len(b.Streams()) != 0 {
			t.Fatalf("listen side still has streams: %v", b.Streams())
		}
		if _, err := io.ReadAll(c); !harness.IsReset(err) {
			t.Fatalf("client read: err = %v, want a reset", err)
		}
	})
	t.Run("nothing matches", func(t *testing.T) {
		a := newNode(t)
		if _, err := a.CloseListeners(ctx, CloseRequest{Protocol: "/x/none"}); !errors.Is(err, ErrNotFound) {
			t.Fatalf("err = %v, want ErrNotFound", err)
		}
		if _, err := a.CloseListeners(ctx, CloseRequest{}); !errors.Is(err, ErrUsage) {
			t.Fatalf("empty request: err = %v, want ErrUsage", err)
		}
	})
}

func TestStreamClose(t *testing.T) {
	ctx := context.Background()
	a, b := newNode(t), newNode(t)
	fwd := tunnel(t, a, b, "/x/s", server(t, echo))
	c1, c2 := openStream(t, fwd), openStream(t, fwd)
	ss := a.Streams()
	if len(ss) != 2 || ss[0].ID >= ss[1].ID {
		t.Fatalf("streams = %+v, want two in ID order", ss)
	}
	// The echo can come back before the bridge has counted the bytes it
	// wrote (the count follows the write's return): wait for the count.
	pollUntil(t, "the first stream's 4 bytes out to be counted", func() bool {
		ss = a.Streams()
		return len(ss) == 2 && ss[0].BytesOut == 4
	})
	if ss[0].BytesOut != 4 || ss[0].Peer != b.id() || ss[0].TargetAddress != "/p2p/"+b.id() {
		t.Errorf("stream record = %+v", ss[0])
	}
	if err := a.CloseStream(ctx, ss[0].ID); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadAll(c1); !harness.IsReset(err) {
		t.Fatalf("closed stream's client: err = %v, want a reset", err)
	}
	// The other stream is untouched.
	if _, err := c2.Write([]byte("pong")); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(c2, make([]byte, 4)); err != nil {
		t.Fatalf("surviving stream broken: %v", err)
	}
	if err := a.CloseStream(ctx, ss[0].ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("closing a gone stream: err = %v, want ErrNotFound", err)
	}
	if n, err := a.CloseAllStreams(ctx); err != nil || n != 1 {
		t.Fatalf("close all = %d, %v", n, err)
	}
	if _, err := io.ReadAll(c2); !harness.IsReset(err) {
		t.Fatalf("client after close all: err = %v, want a reset", err)
	}
}

func TestConflictsLeaveNothingHalfRegistered(t *testing.T) {
	ctx := context.Background()
	a, b := newNode(t), newNode(t)
	target := server(t, echo)
	fwd := tunnel(t, a, b, "/x/dup", target)

	if _, err := b.listenReq(ctx, spec.Request{Protocol: "/x/dup", Target: target, AllowAll: true}); !errors.Is(err, ErrExists) {
		t.Fatalf("second listen: err = %v, want ErrExists", err)
	}
	_, err := a.forwardReq(ctx, spec.Request{Protocol: "/x/dup", ListenAddress: fwd, Peer: b.fullAddr()})
	if !errors.Is(err, ErrAddrInUse) {
		t.Fatalf("forward on a used port: err = %v, want ErrAddrInUse", err)
	}
	if len(a.Listeners()) != 1 || len(b.Listeners()) != 1 {
		t.Fatalf("listeners: a=%d b=%d, want 1 each", len(a.Listeners()), len(b.Listeners()))
	}
	// The original tunnel still works, with its original settings.
	openStream(t, fwd)
	if l := b.Listeners()[0]; l.AllowAll || len(l.AllowedPeers) != 1 {
		t.Fatalf("first listener was altered: %+v", l)
	}
}

func TestForwardToSelfIsRejected(t *testing.T) {
	a := newNode(t)
	_, err := a.forwardReq(context.Background(), spec.Request{Protocol: "/x/web", ListenAddress: "127.0.0.1:0", Peer: a.id()})
	if !errors.Is(err, ErrUsage) {
		t.Fatalf("err = %v, want ErrUsage", err)
	}
}

func TestReportPeerID(t *testing.T) {
	got := make(chan string, 1)
	target := server(t, func(c *net.TCPConn) {
		b, _ := io.ReadAll(c)
		got <- string(b)
	})
	a, b := newNode(t), newNode(t)
	ctx := context.Background()
	if _, err := b.listenReq(ctx, spec.Request{Protocol: "/x/who", Target: target, Allow: []string{a.id()}, ReportPeerID: true}); err != nil {
		t.Fatal(err)
	}
	l, err := a.forwardReq(ctx, spec.Request{Protocol: "/x/who", ListenAddress: "127.0.0.1:0", Peer: b.fullAddr()})
	if err != nil {
		t.Fatal(err)
	}
	c := dial(t, hostPort(t, l.ListenAddress))
	c.Write([]byte("data"))
	c.CloseWrite()
	if want := a.id() + "\ndata"; <-got != want {
		t.Fatalf("target received something else, want %q", want)
	}
}

func TestCloseEndsEverything(t *testing.T) {
	a, b := newNode(t), newNode(t)
	fwd := tunnel(t, a, b, "/x/bye", server(t, echo))
	c := openStream(t, fwd)
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if err := a.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := io.ReadAll(c); !harness.IsReset(err) {
		t.Fatalf("client after node close: err = %v, want a reset", err)
	}
	if _, err := net.Dial("tcp", fwd); err == nil {
		t.Fatal("forward port still accepts after Close")
	}
	if _, err := a.listenReq(context.Background(), spec.Request{Protocol: "/x/late", Target: "127.0.0.1:1", AllowAll: true}); !errors.Is(err, ErrClosed) {
		t.Fatalf("listen after close: err = %v, want ErrClosed", err)
	}
}

// blackhole returns a loopback address whose connects hang: a listener with
// a full accept backlog that never accepts, so the kernel drops new SYNs.
func blackhole(t *testing.T) string {
	t.Helper()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Close(fd) })
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Listen(fd, 0); err != nil {
		t.Fatal(err)
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", sa.(*syscall.SockaddrInet4).Port)
	// Fill the backlog with connections nobody accepts.
	for range 4 {
		d := net.Dialer{Timeout: 200 * time.Millisecond}
		if c, err := d.Dial("tcp", addr); err == nil {
			t.Cleanup(func() { c.Close() })
		}
	}
	return addr
}

func TestTargetDialTimeoutComesFromConfig(t *testing.T) {
	a, b := newNode(t), newNode(t) // target_dial is 2s in newNode
	expectReset(t, tunnel(t, a, b, "/x/slow", blackhole(t)))
	logs := b.logs.String()
	if !strings.Contains(logs, "target dial failed") || !strings.Contains(logs, "i/o timeout") {
		t.Fatalf("want a target dial timeout in the log:\n%s", logs)
	}
}
