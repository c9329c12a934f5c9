package p2phost

import (
	"slices"
	"testing"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/p2ptun/p2ptun/internal/harness"
)

// A peer is protected from trimming, and watched by the keepalive, from
// its first live tunnel stream until its last ends; the keepalive also
// watches Config.KeepalivePeers, each peer once.
func TestTunnelPeersProtectedUntilTheirLastStream(t *testing.T) {
	x, y := harness.NewPeer(t), harness.NewPeer(t)
	h := newHost(t, func(c *Config) { c.KeepalivePeers = func() []peer.ID { return []peer.ID{x, y} } })
	cm := h.Host.Host().ConnManager()

	h.TunnelOpened(x)
	h.TunnelOpened(x)
	if !cm.IsProtected(x, TunnelTag) {
		t.Fatal("a peer with live streams is not protected")
	}
	if got := h.keepalivePeers(); len(got) != 2 || !slices.Contains(got, x) || !slices.Contains(got, y) {
		t.Fatalf("the keepalive watches %v, want %s and %s once each", got, x, y)
	}
	h.TunnelClosed(x)
	if !cm.IsProtected(x, TunnelTag) || !slices.Equal(h.TunnelPeers(), []peer.ID{x}) {
		t.Fatalf("after one of two streams ended: protected %v, tunnel peers %v; want still protected, [%s]", cm.IsProtected(x, TunnelTag), h.TunnelPeers(), x)
	}
	h.TunnelClosed(x)
	if cm.IsProtected(x, TunnelTag) || len(h.TunnelPeers()) != 0 {
		t.Fatalf("after the last stream ended: protected %v, tunnel peers %v; want neither", cm.IsProtected(x, TunnelTag), h.TunnelPeers())
	}
}
