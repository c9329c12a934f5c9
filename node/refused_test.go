package node

import (
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"testing"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/p2ptun/p2ptun/access"
	"github.com/p2ptun/p2ptun/config"
	"github.com/p2ptun/p2ptun/internal/harness"
	"github.com/p2ptun/p2ptun/refusal"
	"github.com/p2ptun/p2ptun/spec"
)

// TestRefusalReachesTheForward checks that a listener's refusal reaches
// the node whose forward opened the stream: every client is reset, each
// refused stream is counted and reported with the cause the listener
// sent, and the forward's log says so once, not once per client.
func TestRefusalReachesTheForward(t *testing.T) {
	a, aReg := metricsNode(t)
	b := newNode(t)
	ctx := context.Background()
	events, cancel := a.Subscribe()
	defer cancel()
	// b's listener allows some other peer, not a.
	if _, err := b.listenReq(ctx, spec.Request{Protocol: "/x/closed", Target: server(t, echo), Allow: []string{harness.NewPeer(t).String()}}); err != nil {
		t.Fatal(err)
	}
	fwd, err := a.forwardReq(ctx, spec.Request{Protocol: "/x/closed", ListenAddress: "/ip4/127.0.0.1/tcp/0", Peer: b.fullAddr()})
	if err != nil {
		t.Fatal(err)
	}
	addr := hostPort(t, fwd.ListenAddress)
	const clients = 200
	for i := range clients {
		expectReset(t, addr)
		ev := next(t, events, EventStreamClose, EventStreamFailed)
		if ev.Reason != string(refusal.Denied) || !strings.Contains(ev.Error, "allow") {
			t.Fatalf("client %d: a's event = %+v, want Reason %q and an error that says what to allow", i, ev, refusal.Denied)
		}
	}
	expect(t, aReg, clients, "p2ptun_stream_errors_total", "cause", string(refusal.Denied))
	expect(t, aReg, 0, "p2ptun_stream_errors_total", "cause", "reset")
	logs := a.logs.String()
	if n := countLines(logs, "refused by the peer") + countLines(logs, "stream open failed"); n != 1 {
		t.Errorf("%d refused clients made %d warning lines on the forward's node, want 1:\n%s", clients, n, grepLines(logs, "level=WARN"))
	}
	if !strings.Contains(logs, "cause=denied") {
		t.Errorf("the forward's node does not log the cause:\n%s", grepLines(logs, "level=WARN"))
	}
}

// TestRefusalCauses checks the cause a forward's node reports for each
// way a listener refuses: its target is down or does not answer, the peer
// is over its stream cap, or it opens streams too fast.
func TestRefusalCauses(t *testing.T) {
	t.Run("target down", func(t *testing.T) {
		a, aReg := metricsNode(t)
		b := newNode(t)
		events, cancel := a.Subscribe()
		defer cancel()
		addr := tunnel(t, a, b, "/x/down", freePort(t))
		expectReset(t, addr)
		if ev := next(t, events, EventStreamClose, EventStreamFailed); ev.Reason != string(refusal.TargetDial) {
			t.Errorf("a's event = %+v, want Reason %q", ev, refusal.TargetDial)
		}
		expect(t, aReg, 1, "p2ptun_stream_errors_total", "cause", string(refusal.TargetDial))
	})
	t.Run("target timeout", func(t *testing.T) {
		a, aReg := metricsNode(t)
		b := newNode(t) // target_dial is 2s in newNode
		events, cancel := a.Subscribe()
		defer cancel()
		expectReset(t, tunnel(t, a, b, "/x/slow", blackhole(t)))
		if ev := next(t, events, EventStreamClose, EventStreamFailed); ev.Reason != string(refusal.TargetTimeout) {
			t.Errorf("a's event = %+v, want Reason %q", ev, refusal.TargetTimeout)
		}
		expect(t, aReg, 1, "p2ptun_stream_errors_total", "cause", string(refusal.TargetTimeout))
	})
	t.Run("over the stream cap", func(t *testing.T) {
		a, aReg := metricsNode(t)
		b := newNodeWith(t, func(o *Options) { o.Limits.ListenerPeerStreams = 1 })
		events, cancel := a.Subscribe()
		defer cancel()
		addr := tunnel(t, a, b, "/x/cap", server(t, echo))
		c := dial(t, addr) // takes the one stream a may hold on b's listener
		harness.Echoes(t, c, "first")
		expectReset(t, addr)
		if ev := next(t, events, EventStreamClose, EventStreamFailed); ev.Reason != string(refusal.StreamLimit) {
			t.Errorf("a's event = %+v, want Reason %q", ev, refusal.StreamLimit)
		}
		expect(t, aReg, 1, "p2ptun_stream_errors_total", "cause", string(refusal.StreamLimit))
	})
	t.Run("rate limited", func(t *testing.T) {
		a, aReg := metricsNode(t)
		b := newNodeWith(t, func(o *Options) {
			// a is on the listener's allowlist: the named peers' rate.
			o.Limits.NamedPeerStreamRate, o.Limits.NamedPeerStreamBurst = config.MinPeerStreamRate, 1
		})
		events, cancel := a.Subscribe()
		defer cancel()
		addr := tunnel(t, a, b, "/x/rate", server(t, echo))
		c := dial(t, addr) // the burst of one: bridged
		harness.Echoes(t, c, "first")
		expectReset(t, addr)
		for {
			ev := next(t, events, EventStreamClose, EventStreamFailed)
			if ev.Type == EventStreamClose && ev.Reason == "eof" {
				continue
			}
			if ev.Reason != string(refusal.RateLimited) {
				t.Errorf("a's event = %+v, want Reason %q", ev, refusal.RateLimited)
			}
			break
		}
		expect(t, aReg, 1, "p2ptun_stream_errors_total", "cause", string(refusal.RateLimited))
	})
}

// TestRemoteAccessPolicyRefuses checks that a node whose access policy
// refuses this one is reported as a refusal (ErrDenied, saying so) by
// forward, pipe and ping, rather than as a connection that worked, and
// that a refused forward binds nothing.
func TestRemoteAccessPolicyRefuses(t *testing.T) {
	a := newNode(t)
	b := newNodeWith(t, func(o *Options) { o.Access = access.New(nil, []peer.ID{peerOf(t, a)}) })
	ctx := context.Background()
	if _, err := b.listenReq(ctx, spec.Request{Protocol: "/x/web", Target: server(t, echo), AllowAll: true}); err != nil {
		t.Fatal(err)
	}
	denied := func(what string, err error) {
		t.Helper()
		if !errors.Is(err, ErrDenied) || !strings.Contains(err.Error(), "access policy") || !strings.Contains(err.Error(), "access allow "+a.id()) {
			t.Errorf("%s: err = %v, want ErrDenied saying the peer's access policy refuses this node, and how to allow it", what, err)
		}
	}
	_, err := a.forwardReq(ctx, spec.Request{Protocol: "/x/web", ListenAddress: "/ip4/127.0.0.1/tcp/0", Peer: b.fullAddr()})
	denied("forward", err)
	if ls := a.listeners.List(); len(ls) != 0 {
		t.Errorf("a refused forward left listeners: %+v", ls)
	}
	p, err := a.pipeReq(ctx, spec.Request{Peer: b.fullAddr(), Protocol: "/x/web"})
	if err == nil {
		p.Abort()
	}
	denied("pipe", err)
	_, err = a.Ping(ctx, b.fullAddr(), 1)
	denied("ping", err)

	// A lazy forward binds, and each client learns the cause.
	events, cancel := a.Subscribe()
	defer cancel()
	l, err := a.forwardReq(ctx, spec.Request{Protocol: "/x/web", ListenAddress: "/ip4/127.0.0.1/tcp/0", Peer: b.fullAddr(), Lazy: true})
	if err != nil {
		t.Fatal(err)
	}
	expectReset(t, hostPort(t, l.ListenAddress))
	if ev := next(t, events, EventStreamFailed, EventStreamClose); ev.Reason != string(refusal.Denied) {
		t.Errorf("lazy forward's event = %+v, want Reason %q", ev, refusal.Denied)
	}
}

// TestDrainingListenerSaysSo checks that while a listener's node drains,
// the streams it refuses reach the forward with the cause "closing" (the
// peer is going away), not as a bare reset or a missing protocol.
func TestDrainingListenerSaysSo(t *testing.T) {
	a, b := newNode(t), newNode(t)
	events, cancel := a.Subscribe()
	defer cancel()
	addr := tunnel(t, a, b, "/x/drain", server(t, echo))
	live := dial(t, addr) // keeps b's drain waiting
	harness.Echoes(t, live, "live")
	dctx, stopDrain := context.WithCancel(context.Background())
	drained := make(chan int, 1)
	go func() { drained <- b.Drain(dctx) }()
	defer func() { stopDrain(); <-drained }()
	// Until b's drain has begun, a client may still get through: poll.
	pollUntil(t, "a client of the draining listener to be refused", func() bool {
		c, err := net.Dial("tcp", addr)
		if harness.IsReset(err) {
			return true // reset before connect returned
		}
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if _, err := io.WriteString(c, "x"); err != nil {
			return true
		}
		_, err = io.ReadFull(c, make([]byte, 1))
		return err != nil
	})
	for {
		ev := next(t, events, EventStreamClose, EventStreamFailed)
		if ev.Type == EventStreamClose && ev.Reason == "eof" {
			continue // a client that got through before the drain
		}
		if ev.Reason != string(refusal.Closing) {
			t.Fatalf("a's event for a client of a draining listener = %+v, want Reason %q", ev, refusal.Closing)
		}
		break
	}
}
