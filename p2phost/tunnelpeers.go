package p2phost

import (
	"maps"
	"slices"
	"sync"

	"github.com/libp2p/go-libp2p/core/peer"
)

// TunnelTag marks, in the connection manager, the peers with live tunnel
// streams: trimming spares them, however many other peers the DHT brings.
const TunnelTag = "p2ptun-tunnel"

// tunnelPeers counts the live tunnel streams per peer, as the node
// reports them (TunnelOpened, TunnelClosed): a peer is protected from
// trimming, and watched by the keepalive, while its count is above zero.
type tunnelPeers struct {
	mu   sync.Mutex
	live map[peer.ID]int
}

// TunnelOpened counts a live tunnel stream to p; its first protects p
// from the connection manager's trimming and has the keepalive watch it.
// Call it after Start (a stream needs the host).
func (h *Host) TunnelOpened(p peer.ID) {
	h.tunnels.mu.Lock()
	defer h.tunnels.mu.Unlock()
	if h.tunnels.live[p]++; h.tunnels.live[p] == 1 {
		h.host.ConnManager().Protect(p, TunnelTag)
	}
}

// TunnelClosed uncounts a live tunnel stream to p; its last unprotects p.
func (h *Host) TunnelClosed(p peer.ID) {
	h.tunnels.mu.Lock()
	defer h.tunnels.mu.Unlock()
	if h.tunnels.live[p]--; h.tunnels.live[p] <= 0 {
		delete(h.tunnels.live, p)
		h.host.ConnManager().Unprotect(p, TunnelTag)
	}
}

// TunnelPeers lists the peers with live tunnel streams, each once
// however many streams it has.
func (h *Host) TunnelPeers() []peer.ID {
	h.tunnels.mu.Lock()
	defer h.tunnels.mu.Unlock()
	return slices.Collect(maps.Keys(h.tunnels.live))
}

// keepalivePeers are the peers the keepalive watches: those with live
// tunnel streams (one entry a peer, not one a stream, so a round is
// cheap) and Config.KeepalivePeers.
func (h *Host) keepalivePeers() []peer.ID {
	out := h.TunnelPeers()
	if h.cfg.KeepalivePeers == nil {
		return out
	}
	for _, p := range h.cfg.KeepalivePeers() {
		if !slices.Contains(out, p) {
			out = append(out, p)
		}
	}
	return out
}
