package node

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/p2ptun/p2ptun/config"
	"github.com/p2ptun/p2ptun/spec"
)

// TestForwardPeersMovesOnWhenAListenerGoes: a failover forward over two
// peers whose first peer stays connected but stops serving the protocol:
// the next client's stream open fails there and the client is served by
// the second peer without noticing; the first is reported down (event,
// metrics, listing) and, once it serves again, comes back up and takes
// over again.
func TestForwardPeersMovesOnWhenAListenerGoes(t *testing.T) {
	a, reg := metricsNode(t)
	b1, b2 := newNode(t), newNode(t)
	ctx := context.Background()
	listen := func(b testNode) {
		t.Helper()
		if _, err := b.listenReq(ctx, spec.Request{Protocol: "/x/bal", Target: server(t, echo), Allow: []string{a.id()}}); err != nil {
			t.Fatal(err)
		}
	}
	listen(b1)
	listen(b2)
	events, cancel := a.Subscribe()
	defer cancel()
	fwd, err := a.forwardReq(ctx, spec.Request{Protocol: "/x/bal", ListenAddress: "127.0.0.1:0", Peers: []string{b1.fullAddr(), b2.fullAddr()}})
	if err != nil {
		t.Fatal(err)
	}
	addr := hostPort(t, fwd.ListenAddress)
	if fwd.Balance != "failover" || fwd.Peer != "" || fwd.TargetAddress != "/p2p/"+b1.id()+",/p2p/"+b2.id() {
		t.Errorf("forward record = %+v", fwd)
	}
	via := func(want testNode) {
		t.Helper()
		echoes(t, addr)
		if ev := next(t, events, EventStreamOpen, EventStreamFailed); ev.Type != EventStreamOpen || ev.Peer != want.id() {
			t.Fatalf("client: %+v, want a stream to %s", ev, want.id())
		}
	}
	via(b1)

	if _, err := b1.CloseListeners(ctx, CloseRequest{Protocol: "/x/bal"}); err != nil {
		t.Fatal(err)
	}
	// Tried on b1 first, which no longer serves /x/bal: b1 goes down,
	// then the stream opens on b2.
	echoes(t, addr)
	down := next(t, events, EventForwardPeerDown)
	if down.Peer != b1.id() || down.TunnelID != fwd.ID || !strings.Contains(down.Error, "/x/bal") {
		t.Errorf("forward_peer_down = %+v, want b1 with why", down)
	}
	if ev := next(t, events, EventStreamOpen, EventStreamFailed); ev.Type != EventStreamOpen || ev.Peer != b2.id() {
		t.Fatalf("client: %+v, want a stream to b2", ev)
	}
	tunnel := []string{"tunnel", strconv.FormatUint(fwd.ID, 10), "kind", "forward", "protocol", "/x/bal"}
	expect(t, reg, 0, "p2ptun_forward_peer_up", append(tunnel, "peer", b1.id())...)
	expect(t, reg, 1, "p2ptun_forward_peer_up", append(tunnel, "peer", b2.id())...)
	expect(t, reg, 1, "p2ptun_forward_peer_down_total", append(tunnel, "peer", b1.id())...)
	if ps := a.Listeners()[0].Peers; len(ps) != 2 || ps[0].Up || ps[0].Error == "" || !ps[1].Up {
		t.Errorf("listed peers = %+v, want b1 down with why, b2 up", ps)
	}
	via(b2) // b1 is down: not tried

	listen(b1)
	if up := next(t, events, EventForwardPeerUp); up.Peer != b1.id() {
		t.Errorf("forward_peer_up = %+v, want b1", up)
	}
	via(b1)
}

// TestForwardPeersNoneReachable: a forward whose peers are all
// unreachable fails with ErrUnreachable, on one line, and leaves nothing
// bound or registered; with --lazy it starts all the same.
func TestForwardPeersNoneReachable(t *testing.T) {
	a := newNode(t)
	gone1, gone2 := newNode(t), newNode(t)
	p1, p2 := gone1.fullAddr(), gone2.fullAddr()
	gone1.Close()
	gone2.Close()
	r := spec.Request{Protocol: "/x/bal", ListenAddress: "127.0.0.1:0", Peers: []string{p1, p2}}
	_, err := a.forwardReq(context.Background(), r)
	if !errors.Is(err, ErrUnreachable) || strings.Contains(err.Error(), "\n") || !strings.Contains(err.Error(), "none of the forward's 2 peers") {
		t.Fatalf("forward to two gone peers: %q, want ErrUnreachable on one line", err)
	}
	if ls := a.Listeners(); len(ls) != 0 {
		t.Fatalf("left registered: %+v", ls)
	}
	r.Lazy = true
	l, err := a.forwardReq(context.Background(), r)
	if err != nil {
		t.Fatalf("lazy forward: %v", err)
	}
	expectReset(t, hostPort(t, l.ListenAddress))
}

// TestForwardPeersSilentPeerGoesDown: the keepalive pings the peers of a
// forward with several that are up although no stream is live to them, so
// that the rtt policy has their RTTs; a peer that goes silent (a
// partition: nothing closes) is marked down by the keepalive.
func TestForwardPeersSilentPeerGoesDown(t *testing.T) {
	keepalive := func(o *Options) { o.Timeouts.Keepalive = config.D(time.Second) }
	a, b1, b2 := newNodeWith(t, keepalive), newNodeWith(t, keepalive), newNodeWith(t, keepalive)
	ctx := context.Background()
	for _, b := range []testNode{b1, b2} {
		if _, err := b.listenReq(ctx, spec.Request{Protocol: "/x/silent", Target: server(t, echo), Allow: []string{a.id()}}); err != nil {
			t.Fatal(err)
		}
	}
	proxy := newGatedProxy(t, hostPort(t, b1.fullAddr()))
	via := "/ip4/127.0.0.1/tcp/" + portOf(t, proxy.ln.Addr().String()) + "/p2p/" + b1.id()
	events, cancel := a.Subscribe()
	defer cancel()
	l, err := a.forwardReq(ctx, spec.Request{Protocol: "/x/silent", ListenAddress: "127.0.0.1:0", Peers: []string{via, b2.fullAddr()}})
	if err != nil {
		t.Fatal(err)
	}
	// Without a stream to either, both are pinged: rtt has their RTTs.
	pollUntil(t, "both peers' RTT measured", func() bool {
		ps := a.Listeners()[0].Peers
		return len(ps) == 2 && ps[0].RTT > 0 && ps[1].RTT > 0
	})
	echoes(t, hostPort(t, l.ListenAddress))

	proxy.partition()
	if down := next(t, events, EventForwardPeerDown); down.Peer != b1.id() {
		t.Fatalf("forward_peer_down = %+v, want b1", down)
	}
	echoes(t, hostPort(t, l.ListenAddress))
}
