package node

import (
	"context"
	"fmt"
	"net"
	"strings"
	"testing"

	ma "github.com/multiformats/go-multiaddr"

	"github.com/p2ptun/p2ptun/internal/harness"
	"github.com/p2ptun/p2ptun/spec"
)

func TestTunnelsPreferTCPWhenThePeerHasBoth(t *testing.T) {
	both := func(o *Options) {
		o.ListenAddrs = []ma.Multiaddr{
			ma.StringCast("/ip4/127.0.0.1/udp/0/quic-v1"),
			ma.StringCast("/ip4/127.0.0.1/tcp/0"),
		}
	}
	a, b := newNodeWith(t, both), newNodeWith(t, both)
	ctx := context.Background()
	if _, err := b.listenReq(ctx, spec.Request{Protocol: "/x/pref", Target: server(t, echo), Allow: []string{a.id()}}); err != nil {
		t.Fatal(err)
	}
	addrs := b.Identity().Addresses
	if len(addrs) != 2 {
		t.Fatalf("b's addresses = %q, want a QUIC and a TCP one", addrs)
	}
	l, err := a.forwardReq(ctx, spec.Request{Protocol: "/x/pref", ListenAddress: "/ip4/127.0.0.1/tcp/0", Peer: "/p2p/" + b.id(), Addrs: addrs})
	if err != nil {
		t.Fatal(err)
	}
	harness.Echoes(t, dial(t, hostPort(t, l.ListenAddress)), "tcp please")
	for _, c := range a.Host().Network().ConnsToPeer(b.Host().ID()) {
		if !strings.Contains(c.RemoteMultiaddr().String(), "/tcp/") {
			t.Errorf("a reached b over %s, want TCP (go-libp2p's default ranker prefers QUIC)", c.RemoteMultiaddr())
		}
	}
	// Over QUIC the 257th tunnel would wait for a free stream (go-libp2p
	// caps a QUIC connection at 256); over TCP all of them echo at once.
	held := make([]*net.TCPConn, 300)
	for i := range held {
		held[i] = dial(t, hostPort(t, l.ListenAddress))
		harness.Echoes(t, held[i], "held")
	}
	for i, c := range held {
		harness.Echoes(t, c, fmt.Sprintf("still %d", i))
	}
	if n := len(a.Streams()); n != len(held)+1 {
		t.Fatalf("a has %d live streams, want %d", n, len(held)+1)
	}
}
