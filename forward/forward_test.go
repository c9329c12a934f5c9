package forward

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/peerstore"
	ma "github.com/multiformats/go-multiaddr"
	"go.uber.org/goleak"

	"github.com/p2ptun/p2ptun/internal/harness"
	"github.com/p2ptun/p2ptun/internal/logbuf"
	"github.com/p2ptun/p2ptun/refusal"
	"github.com/p2ptun/p2ptun/registry"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

const proto = "/x/echo"

// newHost starts a libp2p host with key on addr (loopback) and closes it
// at cleanup (closing it twice is harmless).
func newHost(t *testing.T, key crypto.PrivKey, addr string) host.Host {
	t.Helper()
	h, err := libp2p.New(libp2p.Identity(key), libp2p.ListenAddrStrings(addr), libp2p.DisableMetrics())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	return h
}

func newKey(t *testing.T) crypto.PrivKey {
	t.Helper()
	k, _, err := crypto.GenerateEd25519Key(nil)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// echoPeer serves proto on h by echoing each stream.
func echoPeer(h host.Host) {
	h.SetStreamHandler(proto, func(s network.Stream) {
		_, _ = io.Copy(s, s)
		_ = s.Close()
	})
}

// startForward binds a forward from a fresh host to p on a loopback port
// and returns it with its log.
func startForward(t *testing.T, p peer.ID, addr ma.Multiaddr, cfg Config) (*Forward, *logbuf.Buffer) {
	t.Helper()
	h := newHost(t, newKey(t), "/ip4/127.0.0.1/tcp/0")
	h.Peerstore().AddAddr(p, addr, peerstore.PermanentAddrTTL)
	logs := &logbuf.Buffer{}
	cfg.Protocol, cfg.Peer = proto, p
	cfg.Streams = &registry.Streams{}
	cfg.Logger = slog.New(slog.NewTextHandler(logs, nil))
	return runForward(t, h, cfg), logs
}

// runForward starts a forward from h with cfg on a loopback port; it is
// closed at cleanup.
func runForward(t *testing.T, h host.Host, cfg Config) *Forward {
	t.Helper()
	cfg.ListenAddr = ma.StringCast("/ip4/127.0.0.1/tcp/0")
	f, err := New(h, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

// send connects to the forward and sends msg, with a 10 s deadline on the
// whole connection; the caller closes it.
func send(f *Forward, msg string) (net.Conn, error) {
	port, _ := f.Addr().ValueForProtocol(ma.P_TCP)
	c, err := net.DialTimeout("tcp", "127.0.0.1:"+port, 10*time.Second)
	if err != nil {
		return nil, err
	}
	if err := c.SetDeadline(time.Now().Add(10 * time.Second)); err != nil {
		c.Close()
		return nil, err
	}
	if _, err := io.WriteString(c, msg); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// client connects to the forward and returns how the connection ends
// after it sends msg: nil if msg comes back.
func client(f *Forward, msg string) error {
	c, err := send(f, msg)
	if err != nil {
		return err
	}
	defer c.Close()
	got := make([]byte, len(msg))
	if _, err := io.ReadFull(c, got); err != nil {
		return err
	}
	if string(got) != msg {
		return errors.New("echo differs")
	}
	return nil
}

// TestRedialGate checks that a storm of clients while the peer cannot be
// reached makes one dial, and that clients during the backoff after it are
// reset without another.
func TestRedialGate(t *testing.T) {
	// The peer's address accepts TCP connections and holds them without a
	// word, so a dial is in flight until the test drops them.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	accepted := make(chan net.Conn, 16)
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted <- c
		}
	})
	t.Cleanup(func() { ln.Close(); wg.Wait() })

	p, err := peer.IDFromPrivateKey(newKey(t))
	if err != nil {
		t.Fatal(err)
	}
	addr := ma.StringCast("/ip4/127.0.0.1/tcp/" + strings.TrimPrefix(ln.Addr().String(), "127.0.0.1:"))
	f, logs := startForward(t, p, addr, Config{RedialMin: time.Hour})

	const storm = 10
	errs := make(chan error, storm)
	var clients sync.WaitGroup
	clients.Go(func() { errs <- client(f, "first") })
	dialed := <-accepted // the first client's dial reached the peer
	for range storm - 1 {
		clients.Go(func() { errs <- client(f, "more") })
	}
	dialed.Close() // the dial fails
	clients.Wait()
	close(errs)
	for err := range errs {
		if !harness.IsReset(err) {
			t.Fatalf("client while the peer is unreachable: %v, want a reset", err)
		}
	}
	if err := client(f, "during the backoff"); !harness.IsReset(err) {
		t.Fatalf("client during the backoff: %v, want a reset", err)
	}
	select {
	case c := <-accepted:
		c.Close()
		t.Fatalf("the forward dialed the peer again: %d clients made more than one dial in the backoff", storm+1)
	default:
	}
	if !strings.Contains(logs.String(), "not redialing for") {
		t.Errorf("the log does not say the forward backs off:\n%s", logs)
	}
}

// TestRedialAfterPeerRestart checks that, once the forward's own backoff is
// over, libp2p's (5s) does not keep it from reaching a peer that is back.
func TestRedialAfterPeerRestart(t *testing.T) {
	key := newKey(t)
	b := newHost(t, key, "/ip4/127.0.0.1/tcp/0")
	echoPeer(b)
	addr := b.Addrs()[0]
	f, logs := startForward(t, b.ID(), addr, Config{RedialMin: time.Nanosecond, RedialMax: time.Nanosecond})
	if err := client(f, "before"); err != nil {
		t.Fatalf("client before the restart: %v", err)
	}

	b.Close()
	if err := client(f, "while down"); !harness.IsReset(err) {
		t.Fatalf("client while the peer is down: %v, want a reset", err)
	}

	b = newHost(t, key, addr.String())
	echoPeer(b)
	if err := client(f, "after"); err != nil {
		t.Fatalf("first client once the peer is back: %v, want an echo\n%s", err, logs)
	}
}

// TestRefusedClientsLoggedOnce checks that a stream the peer's listener
// resets with a p2ptun code reaches the forward as its cause, whether or
// not the client sent anything: each client is reset, each stream ends
// with the cause, and the forward logs it once, not once per client.
func TestRefusedClientsLoggedOnce(t *testing.T) {
	b := newHost(t, newKey(t), "/ip4/127.0.0.1/tcp/0")
	b.SetStreamHandler(proto, func(s network.Stream) { _ = refusal.Reset(s, refusal.Denied) })
	f, logs := startForward(t, b.ID(), b.Addrs()[0], Config{})
	causes := make(chan refusal.Cause, 256)
	f.cfg.Streams.SetHooks(registry.Hooks{
		Closed: func(_ registry.StreamInfo, err error) {
			if r := refusal.Of(err); r != nil {
				causes <- r.Cause
			} else {
				causes <- refusal.Cause(fmt.Sprint("not a refusal: ", err))
			}
		},
		Failed: func(fl registry.Failure) { causes <- refusal.Cause("failed: " + fl.Cause) },
	})

	const clients = 200
	for i := range clients {
		msg := ""
		if i%2 == 0 {
			msg = "hello" // half the clients send something first, half nothing
		}
		if err := readAll(f, msg); !harness.IsReset(err) {
			t.Fatalf("client %d: %v, want a reset", i, err)
		}
		if got := nextCause(t, causes); got != refusal.Denied {
			t.Fatalf("client %d: the stream ended with %q, want %q", i, got, refusal.Denied)
		}
	}
	if n := strings.Count(logs.String(), "stream refused by the peer"); n != 1 {
		t.Fatalf("%d refused clients logged %d lines, want 1:\n%s", clients, n, logs)
	}
	if !strings.Contains(logs.String(), "cause=denied") {
		t.Errorf("the log line does not name the cause:\n%s", logs)
	}
}

// nextCause returns the next cause a Failed or Ended hook reported; it
// fails the test rather than hang if none comes.
func nextCause[C ~string](t *testing.T, causes <-chan C) C {
	t.Helper()
	select {
	case c := <-causes:
		return c
	case <-time.After(10 * time.Second):
		t.Fatal("no failure cause reported within 10s")
		return ""
	}
}

// readAll connects to the forward, sends msg and reads until the
// connection ends, returning how it ended.
func readAll(f *Forward, msg string) error {
	c, err := send(f, msg)
	if err != nil {
		return err
	}
	defer c.Close()
	_, err = io.ReadAll(c)
	return err
}

// TestFailedOpensLoggedOnce checks that clients whose streams cannot be
// opened (the peer serves no such protocol) are each reset, and each
// counted as a failure with its cause, but logged once per cause and
// interval, not once per client.
func TestFailedOpensLoggedOnce(t *testing.T) {
	b := newHost(t, newKey(t), "/ip4/127.0.0.1/tcp/0") // no handler for proto
	f, logs := startForward(t, b.ID(), b.Addrs()[0], Config{})
	causes := make(chan string, 256)
	f.cfg.Streams.SetHooks(registry.Hooks{Failed: func(fl registry.Failure) { causes <- fl.Cause }})
	const clients = 200
	for i := range clients {
		if err := readAll(f, ""); !harness.IsReset(err) {
			t.Fatalf("client %d: %v, want a reset", i, err)
		}
		if got := nextCause(t, causes); got != "no_listener" {
			t.Fatalf("client %d: failure cause %q, want no_listener", i, got)
		}
	}
	if n := strings.Count(logs.String(), "stream open failed"); n != 1 {
		t.Fatalf("%d clients refused the same way logged %d lines, want 1:\n%s", clients, n, logs)
	}
}
