package node

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/p2ptun/p2ptun/access"
	"github.com/p2ptun/p2ptun/config"
	"github.com/p2ptun/p2ptun/config/homedir"
	"github.com/p2ptun/p2ptun/internal/harness"
	"github.com/p2ptun/p2ptun/spec"
)

// pollUntil polls cond until it holds, failing after a deadline.
func pollUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	harness.Until(t, 20*time.Second, what, cond)
}

func relayConfig(allow ...string) *config.Relay {
	return &config.Relay{Allow: allow, MaxReservations: 128, MaxCircuits: 64, ReservationTTL: config.D(time.Hour)}
}

// behindRelay starts a node with no listen address of its own: it can be
// reached only through relay r.
func behindRelay(t *testing.T, r testNode, tweak func(*Options)) testNode {
	t.Helper()
	return newNodeWith(t, func(o *Options) {
		o.ListenAddrs = nil
		o.Relays = []peer.AddrInfo{{ID: r.Host().ID(), Addrs: r.Host().Addrs()}}
		o.Reachability = "private"
		if tweak != nil {
			tweak(o)
		}
	})
}

func circuitAddr(n testNode) string {
	for _, a := range n.Identity().Addresses {
		if strings.Contains(a, "/p2p-circuit/") {
			return a
		}
	}
	return ""
}

func TestTunnelThroughRelay(t *testing.T) {
	a := newNode(t)
	skB, _ := homedir.GenerateKey()
	idB, _ := peer.IDFromPrivateKey(skB)
	r := newNodeWith(t, func(o *Options) { o.Relay = relayConfig(a.id(), idB.String()) })
	b := behindRelay(t, r, func(o *Options) { o.Key = skB })

	pollUntil(t, "B to advertise a relay address", func() bool { return circuitAddr(b) != "" })
	if len(b.Identity().Addresses) != 1 {
		t.Fatalf("B should be reachable only through the relay, has %v", b.Identity().Addresses)
	}
	ctx := context.Background()
	if _, err := b.listenReq(ctx, spec.Request{Protocol: "/x/relayed", Target: server(t, echo), Allow: []string{a.id()}}); err != nil {
		t.Fatal(err)
	}
	l, err := a.forwardReq(ctx, spec.Request{Protocol: "/x/relayed", ListenAddress: "127.0.0.1:0", Peer: circuitAddr(b)})
	if err != nil {
		t.Fatal(err)
	}
	c := dial(t, hostPort(t, l.ListenAddress))
	// Far more than go-libp2p's default relay cap of 128 KiB.
	data := make([]byte, 1<<20)
	rand.Read(data)
	// The write half stays open until the path has been read: the whole
	// echo fits in the buffers, so the stream could otherwise end (and
	// leave the registry) before the poll sees it.
	checked := make(chan struct{})
	wrote := make(chan error, 1)
	go func() {
		_, err := c.Write(data)
		<-checked
		wrote <- errors.Join(err, c.CloseWrite())
	}()
	pollUntil(t, "the stream to appear", func() bool { return len(a.Streams()) == 1 })
	if p := a.Streams()[0].Path; p != "relayed via "+r.id() {
		t.Errorf("path = %q, want relayed via the relay", p)
	}
	close(checked)
	got, err := io.ReadAll(c)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("relayed echo: %d of %d bytes, %v", len(got), len(data), err)
	}
	if err := <-wrote; err != nil {
		t.Fatal(err)
	}

	res, err := a.Ping(ctx, circuitAddr(b), 2)
	if err != nil || len(res) != 2 || res[0].Path != "relayed via "+r.id() || res[0].RTT <= 0 {
		t.Fatalf("ping through the relay: %+v, %v", res, err)
	}
}

// TestRelayReservationEvent: a node behind a relay reports the
// reservation the relay holds for it as an event, once, naming the relay.
func TestRelayReservationEvent(t *testing.T) {
	r := newNodeWith(t, func(o *Options) { o.Relay = relayConfig(); o.Relay.AllowAll = true })
	var events <-chan Event
	b := buildNode(t, func(o *Options) {
		o.ListenAddrs = nil
		o.Relays = []peer.AddrInfo{{ID: r.Host().ID(), Addrs: r.Host().Addrs()}}
		o.Reachability = "private"
	}, func(n *Node) {
		ch, cancel := n.Subscribe()
		t.Cleanup(cancel)
		events = ch
	})
	if ev := next(t, events, EventRelayHeld, EventRelayLost); ev.Type != EventRelayHeld || ev.Peer != r.id() || ev.Error != "" {
		t.Fatalf("first relay event = %+v, want %s naming the relay %s", ev, EventRelayHeld, r.id())
	}
	pollUntil(t, "B to advertise a relay address", func() bool { return circuitAddr(b) != "" })
}

func TestRelayRefusesPeersNotOnItsList(t *testing.T) {
	a := newNode(t)
	r := newNodeWith(t, func(o *Options) { o.Relay = relayConfig(a.id()) }) // serves A only
	b := behindRelay(t, r, nil)

	pollUntil(t, "the relay to log the refused reservation", func() bool {
		return strings.Contains(r.logs.String(), "relay refused a reservation")
	})
	if !strings.Contains(r.logs.String(), "peer="+b.id()) {
		t.Fatalf("refusal does not name the peer:\n%s", r.logs)
	}
	pollUntil(t, "B to log that the relay refused it", func() bool {
		return strings.Contains(b.logs.String(), "the relay refused a reservation: ask its operator to add "+b.id())
	})
	circuit := r.fullAddr() + "/p2p-circuit/p2p/" + b.id()
	_, err := a.forwardReq(context.Background(), spec.Request{Protocol: "/x/web", ListenAddress: "127.0.0.1:0", Peer: circuit})
	if !errors.Is(err, ErrUnreachable) || !strings.Contains(err.Error(), "PERMISSION_DENIED") || !strings.Contains(err.Error(), "relay's allow list") {
		t.Fatalf("forward through a relay that refused the peer: err = %v, want ErrUnreachable saying the relay denied it", err)
	}
}

func TestPingDirect(t *testing.T) {
	a, b := newNode(t), newNode(t)
	res, err := a.Ping(context.Background(), b.fullAddr(), 3)
	if err != nil || len(res) != 3 {
		t.Fatalf("ping: %+v, %v", res, err)
	}
	for _, r := range res {
		if r.Path != "direct" || r.RTT <= 0 {
			t.Fatalf("ping result %+v, want a direct path and a positive RTT", r)
		}
	}
	if a.RTT(b.id()) <= 0 {
		t.Fatal("ping did not record an RTT for the peer")
	}
	if _, err := a.Ping(context.Background(), b.fullAddr(), 0); !errors.Is(err, ErrUsage) {
		t.Fatalf("ping -n 0: err = %v, want ErrUsage", err)
	}
}

// ping prepares its peer as forward and pipe do (one preparePeer): its
// own ID is a usage error naming the command, and a peer the access
// policy refuses gets the same hint.
func TestPingPreparesThePeerAsForwardDoes(t *testing.T) {
	b := newNode(t)
	a := newNodeWith(t, func(o *Options) { o.Access = access.New(nil, []peer.ID{peerOf(t, b)}) })
	_, err := a.Ping(context.Background(), a.id(), 1)
	if !errors.Is(err, ErrUsage) || !strings.HasSuffix(err.Error(), "is this node's own peer ID; ping another peer") {
		t.Fatalf("ping self: err = %v, want ErrUsage ending \"; ping another peer\"", err)
	}
	_, err = a.Ping(context.Background(), b.fullAddr(), 1)
	if !errors.Is(err, ErrDenied) || !strings.HasSuffix(err.Error(), "or run `p2ptun access allow "+b.id()+"`") {
		t.Fatalf("ping a denied peer: err = %v, want ErrDenied with the access hint", err)
	}
}

func TestPeerAddressesSurviveARestart(t *testing.T) {
	b := newNode(t)
	cache := t.TempDir() + "/peers.json"
	sk, _ := homedir.GenerateKey()
	withCache := func(o *Options) { o.Key = sk; o.PeerCache = cache }
	a := newNodeWith(t, withCache)
	// First run: the user gives B's full address.
	if _, err := a.forwardReq(context.Background(), spec.Request{Protocol: "/x/c", ListenAddress: "127.0.0.1:0", Peer: b.fullAddr()}); err != nil {
		t.Fatal(err)
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	// After a restart, the bare /p2p/ID is enough.
	again := newNodeWith(t, withCache)
	if _, err := again.forwardReq(context.Background(), spec.Request{Protocol: "/x/c", ListenAddress: "127.0.0.1:0", Peer: "/p2p/" + b.id()}); err != nil {
		t.Fatalf("forward to /p2p/ID after a restart: %v", err)
	}
	// And without the cache it is not.
	fresh := newNode(t)
	if _, err := fresh.forwardReq(context.Background(), spec.Request{Protocol: "/x/c", ListenAddress: "127.0.0.1:0", Peer: "/p2p/" + b.id()}); !errors.Is(err, ErrUnreachable) {
		t.Fatalf("a node without the cache: err = %v, want ErrUnreachable", err)
	}
}

func TestDHTFindsAPeerByIDAlone(t *testing.T) {
	server := func(o *Options) { o.DHT = "server" }
	boot := newNodeWith(t, server)
	bootInfo := []peer.AddrInfo{{ID: boot.Host().ID(), Addrs: boot.Host().Addrs()}}
	withBoot := func(o *Options) { o.DHT = "server"; o.Bootstrap = bootInfo }
	b := newNodeWith(t, withBoot)
	a := newNodeWith(t, withBoot)
	if _, err := b.listenReq(context.Background(), spec.Request{Protocol: "/x/dht", Target: server2(t), Allow: []string{a.id()}}); err != nil {
		t.Fatal(err)
	}
	// B must have joined the bootstrap node's routing table.
	pollUntil(t, "B in the bootstrap node's routing table", func() bool {
		return boot.p2p.DHT() != nil && boot.p2p.DHT().RoutingTable().Find(b.Host().ID()) != ""
	})
	pollUntil(t, "A to join the DHT", func() bool { return a.p2p.DHT().RoutingTable().Size() > 0 })
	l, err := a.forwardReq(context.Background(), spec.Request{Protocol: "/x/dht", ListenAddress: "127.0.0.1:0", Peer: "/p2p/" + b.id()})
	if err != nil {
		t.Fatalf("forward to /p2p/ID through the DHT: %v", err)
	}
	openStream(t, hostPort(t, l.ListenAddress))

	// A node on another DHT (another prefix) cannot find B.
	other := newNodeWith(t, func(o *Options) { o.DHT = "server"; o.Bootstrap = bootInfo; o.DHTPrefix = "/elsewhere" })
	if _, err := other.forwardReq(context.Background(), spec.Request{Protocol: "/x/dht", ListenAddress: "127.0.0.1:0", Peer: "/p2p/" + b.id()}); !errors.Is(err, ErrUnreachable) {
		t.Fatalf("a node on another DHT found B: err = %v", err)
	}
}

func server2(t *testing.T) string { return server(t, echo) }

func TestLimitingRelayNeedsAllowLimited(t *testing.T) {
	a := newNode(t)
	skB, _ := homedir.GenerateKey()
	idB, _ := peer.IDFromPrivateKey(skB)
	limited := relayConfig(a.id(), idB.String())
	limited.Duration = config.D(time.Hour) // a cap makes relayed connections "limited"
	r := newNodeWith(t, func(o *Options) { o.Relay = limited })
	b := behindRelay(t, r, func(o *Options) { o.Key = skB })
	pollUntil(t, "B to advertise a relay address", func() bool { return circuitAddr(b) != "" })
	ctx := context.Background()
	if _, err := b.listenReq(ctx, spec.Request{Protocol: "/x/lim", Target: server(t, echo), Allow: []string{a.id()}}); err != nil {
		t.Fatal(err)
	}

	l, err := a.forwardReq(ctx, spec.Request{Protocol: "/x/lim", ListenAddress: "127.0.0.1:0", Peer: circuitAddr(b)})
	if err != nil {
		t.Fatal(err)
	}
	expectReset(t, hostPort(t, l.ListenAddress))
	if !strings.Contains(a.logs.String(), "reachable only through a relay that limits relayed connections") {
		t.Fatalf("the forward should say the relay limits connections and how to opt in:\n%s", a.logs)
	}

	l, err = a.forwardReq(ctx, spec.Request{Protocol: "/x/lim", ListenAddress: "127.0.0.1:0", Peer: circuitAddr(b), AllowLimited: true})
	if err != nil {
		t.Fatal(err)
	}
	openStream(t, hostPort(t, l.ListenAddress))
}
