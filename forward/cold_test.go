package forward

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/event"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/peerstore"
	"github.com/libp2p/go-libp2p/p2p/protocol/identify"

	"github.com/p2ptun/p2ptun/access"
	"github.com/p2ptun/p2ptun/internal/harness"
	"github.com/p2ptun/p2ptun/internal/logbuf"
	"github.com/p2ptun/p2ptun/internal/testnet"
	"github.com/p2ptun/p2ptun/refusal"
	"github.com/p2ptun/p2ptun/registry"
	seam "github.com/p2ptun/p2ptun/tunnel"
)

// TestColdStreamDoesNotWaitForIdentify checks that a forward's first
// client, whose dial makes the connection, has its bytes go both ways
// before identify has reported on the peer: the peer's identify handler
// holds the request without a word, so identify cannot complete until
// go-libp2p's own identify timeout gives up, and a stream that waited for
// it would see the identification fail first. The stream's record counts
// the bytes sent before the bridge took over.
func TestColdStreamDoesNotWaitForIdentify(t *testing.T) {
	b := newHost(t, newKey(t), "/ip4/127.0.0.1/tcp/0")
	echoPeer(b)
	release := make(chan struct{})
	b.SetStreamHandler(identify.ID, func(s network.Stream) {
		<-release
		_ = s.Reset()
	})
	t.Cleanup(func() { close(release) }) // before b closes

	h := newHost(t, newKey(t), "/ip4/127.0.0.1/tcp/0")
	h.Peerstore().AddAddrs(b.ID(), b.Addrs(), peerstore.PermanentAddrTTL)
	sub, err := h.EventBus().Subscribe([]any{new(event.EvtPeerIdentificationCompleted), new(event.EvtPeerIdentificationFailed)})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	logs := &logbuf.Buffer{}
	cfg := Config{
		Side:        sideFor(logs),
		Peer:        b.ID(),
		DialTimeout: time.Minute, StreamOpenTimeout: time.Minute, // generous: only a failure waits for them
	}
	closed := make(chan registry.StreamInfo, 2)
	cfg.Streams.SetHooks(registry.Hooks{Closed: func(s registry.StreamInfo, _ error) { closed <- s }})
	f := runForward(t, h, cfg)

	if err := client(f, "ping"); err != nil {
		t.Fatalf("first client on a cold connection: %v, want its echo\n%s", err, logs)
	}
	select {
	case ev := <-sub.Out():
		t.Fatalf("identify reported %+v before the first client's echo came back: the stream waited for it", ev)
	default:
	}
	select {
	case s := <-closed: // the client's bytes sent before the bridge count too
		if s.BytesIn != 4 || s.BytesOut != 4 {
			t.Errorf("first client's stream counted %d bytes in, %d out; want 4 and 4", s.BytesIn, s.BytesOut)
		}
	case <-time.After(time.Minute):
		t.Fatal("the first client's stream did not end within a minute")
	}
	if err := client(f, "again"); err != nil {
		t.Fatalf("second client, on the warm connection: %v\n%s", err, logs)
	}
}

// TestColdRefusedByAccessPolicy checks that a peer whose access policy
// refuses this node, seen by a first client's cold stream, is reported as
// that refusal (cause denied, refusal.ErrDenied, the line saying how to
// allow it) and counts as a failed dial: the next client is reset during
// the redial backoff, without a dial.
func TestColdRefusedByAccessPolicy(t *testing.T) {
	key := newKey(t)
	self, err := peer.IDFromPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	b := testnet.Host(t, libp2p.ConnectionGater(access.New(nil, []peer.ID{self})))
	echoPeer(b)

	h := newHost(t, key, "/ip4/127.0.0.1/tcp/0")
	h.Peerstore().AddAddrs(b.ID(), b.Addrs(), peerstore.PermanentAddrTTL)
	logs := &logbuf.Buffer{}
	cfg := Config{Side: sideFor(logs), Peer: b.ID(), RedialMin: time.Hour}
	failures := make(chan registry.Failure, 2)
	cfg.Streams.SetHooks(registry.Hooks{Failed: func(fl registry.Failure) { failures <- fl }})
	f := runForward(t, h, cfg)

	if err := readAll(f, "hello"); !harness.IsReset(err) {
		t.Fatalf("first client: %v, want a reset", err)
	}
	fl := nextFailure(t, failures)
	if fl.Cause != string(refusal.Denied) || !errors.Is(fl.Err, refusal.ErrDenied) || !strings.Contains(fl.Err.Error(), "access allow "+self.String()) {
		t.Fatalf("first client's failure: cause %q, err %v; want cause denied, refusal.ErrDenied saying how to allow this node", fl.Cause, fl.Err)
	}
	if err := readAll(f, "again"); !harness.IsReset(err) {
		t.Fatalf("second client: %v, want a reset", err)
	}
	if fl := nextFailure(t, failures); !errors.Is(fl.Err, refusal.ErrDenied) {
		t.Fatalf("second client's failure: %v, want the refusal again", fl.Err)
	}
	if !strings.Contains(logs.String(), "not redialing for") {
		t.Errorf("the refused dial did not start the redial backoff:\n%s", logs)
	}
}

// sideFor returns a forward's Side for proto that logs to logs, with a
// stream registry of its own.
func sideFor(logs *logbuf.Buffer) seam.Side {
	s := seam.Side{Protocol: proto, Streams: &registry.Streams{}}
	s.Logger = slog.New(slog.NewTextHandler(logs, nil))
	return s
}

// nextFailure returns the next failure the Failed hook reported; it fails
// the test rather than hang if none comes.
func nextFailure(t *testing.T, failures <-chan registry.Failure) registry.Failure {
	t.Helper()
	select {
	case fl := <-failures:
		return fl
	case <-time.After(time.Minute):
		t.Fatal("no failure reported within a minute")
		return registry.Failure{}
	}
}

// TestCloseDuringColdHandshake checks that closing a forward while a
// first client's cold stream waits for the peer's answer (a peer that
// takes streams and never answers) ends that wait: Close returns, the
// client is reset, and nothing is left running.
func TestCloseDuringColdHandshake(t *testing.T) {
	b := newHost(t, newKey(t), "/ip4/127.0.0.1/tcp/0")
	taken := make(chan struct{}, 16)
	release := make(chan struct{})
	b.Network().SetStreamHandler(func(s network.Stream) { // no multistream answer, not even identify's
		buf := make([]byte, 64)
		if n, _ := io.ReadAtLeast(s, buf, len("\x13/multistream/1.0.0\n\x08"+proto+"\n")); strings.Contains(string(buf[:n]), proto) {
			taken <- struct{}{} // the client's stream, not identify's
		}
		<-release
		_ = s.Reset()
	})
	t.Cleanup(func() { close(release) }) // before b closes

	h := newHost(t, newKey(t), "/ip4/127.0.0.1/tcp/0")
	h.Peerstore().AddAddrs(b.ID(), b.Addrs(), peerstore.PermanentAddrTTL)
	logs := &logbuf.Buffer{}
	f := runForward(t, h, Config{Side: sideFor(logs), Peer: b.ID(), StreamOpenTimeout: time.Hour})

	c, err := send(f, "hello")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	<-taken // the client's stream reached the peer, which holds it unanswered
	if err := f.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if _, err := io.ReadAll(c); !harness.IsReset(err) {
		t.Errorf("client of a forward closed during its handshake: %v, want a reset", err)
	}
}

// TestColdClientResetIsAReset checks that a first client that resets its
// connection before the cold stream's handshake is answered reaches the
// peer as a reset, not as a clean end of its data: the one-time reset the
// socket reports is taken by the read that sends the client's first bytes
// with the handshake.
func TestColdClientResetIsAReset(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("the bridge tells a reset already reported from a clean end (TCP_INFO) on Linux only")
	}
	for _, msg := range []string{"partial request", ""} {
		t.Run(fmt.Sprintf("%d bytes first", len(msg)), func(t *testing.T) {
			b := newHost(t, newKey(t), "/ip4/127.0.0.1/tcp/0")
			ended := make(chan error, 1)
			b.SetStreamHandler(proto, func(s network.Stream) {
				_, err := io.ReadAll(s)
				ended <- err
				_ = s.Reset()
			})
			h := newHost(t, newKey(t), "/ip4/127.0.0.1/tcp/0")
			h.Peerstore().AddAddrs(b.ID(), b.Addrs(), peerstore.PermanentAddrTTL)
			logs := &logbuf.Buffer{}
			f := runForward(t, h, Config{Side: sideFor(logs), Peer: b.ID()})

			c, err := send(f, msg)
			if err != nil {
				t.Fatal(err)
			}
			c.(*net.TCPConn).SetLinger(0)
			c.Close() // a RST
			select {
			case err := <-ended:
				if err == nil {
					t.Fatalf("the peer read a clean end of the client's data after the client reset\n%s", logs)
				}
			case <-time.After(time.Minute):
				t.Fatal("the peer's stream did not end within a minute")
			}
		})
	}
}
