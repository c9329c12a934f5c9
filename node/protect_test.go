package node

import (
	"context"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/p2ptun/p2ptun/internal/harness"
	"github.com/p2ptun/p2ptun/p2phost"
)

// A peer with a live tunnel survives the connection manager's trimming,
// however many other peers fill the table and however little the
// connection manager values it; once its last stream ends, it is fair
// game again.
func TestTunnelPeersSurviveConnectionTrimming(t *testing.T) {
	tiny := func(o *Options) { o.ConnManager = p2phost.ConnManager{Low: 2, High: 4, GracePeriod: time.Nanosecond} }
	n := newNodeWith(t, tiny)
	x := newNode(t)
	c := dial(t, tunnel(t, x, n, "/x/keep", server(t, echo)))
	harness.Echoes(t, c, "before")
	xID := peerOf(t, x)

	// More peers than the high-water mark connect, each valued above the
	// tunnel peer, as the DHT's routing table values its peers.
	nInfo := peer.AddrInfo{ID: n.Host().ID(), Addrs: n.Host().Addrs()}
	var fillers []peer.ID
	for range 6 {
		f := anyHost(t)
		if err := f.Connect(context.Background(), nInfo); err != nil {
			t.Fatal(err)
		}
		n.Host().ConnManager().TagPeer(f.ID(), "routing-table", 10)
		fillers = append(fillers, f.ID())
	}
	n.Host().ConnManager().TrimOpenConns(context.Background())

	harness.Echoes(t, c, "after the trim") // the tunnel's stream was not reset
	if got := n.Host().Network().Connectedness(xID); got != network.Connected {
		t.Fatalf("the tunnel peer is %v after the trim, want Connected", got)
	}
	connected := func() int {
		k := 0
		for _, f := range fillers {
			if n.Host().Network().Connectedness(f) == network.Connected {
				k++
			}
		}
		return k
	}
	pollUntil(t, "the other peers to be trimmed down to the low-water mark", func() bool { return connected() <= 2 })

	// The tunnel's last stream ends: the peer is no longer protected.
	c.Close()
	// The registry lists the stream as gone just before its Closed hook
	// unprotects the peer: wait for the unprotect itself.
	pollUntil(t, "the tunnel peer to be unprotected after its last stream ended", func() bool {
		return !n.Host().ConnManager().IsProtected(xID, p2phost.TunnelTag)
	})
	if len(n.Streams()) != 0 {
		t.Fatalf("streams after the last one ended: %+v", n.Streams())
	}
}

// The keepalive watches the set of peers with live streams that the
// registry's hooks have the host keep: a peer once however many streams
// it has, and none once its last stream has ended.
func TestKeepaliveWatchesEachTunnelPeerOnce(t *testing.T) {
	n, x := newNode(t), newNode(t)
	addr := tunnel(t, x, n, "/x/watch", server(t, echo))
	c1, c2 := dial(t, addr), dial(t, addr)
	harness.Echoes(t, c1, "first")
	harness.Echoes(t, c2, "second")
	xID := peerOf(t, x)
	if got := n.p2p.TunnelPeers(); len(got) != 1 || got[0] != xID {
		t.Fatalf("with two streams from one peer, the keepalive watches %v; want [%s]", got, xID)
	}
	c1.Close()
	c2.Close()
	pollUntil(t, "the keepalive to stop watching a peer whose streams ended", func() bool { return len(n.p2p.TunnelPeers()) == 0 })
}
