package node

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/p2ptun/p2ptun/p2phost"
	"github.com/p2ptun/p2ptun/registry"
	"github.com/p2ptun/p2ptun/spec"
)

// activePeers are the peers of forwards with several that are up, for
// the keepalive to watch besides the peers with live streams (to measure
// their RTT, and to notice one that stops answering).
func (n *Node) activePeers() []peer.ID {
	var out []peer.ID
	for _, l := range n.listeners.List() {
		for _, p := range l.Peers {
			if id, err := peer.Decode(p.Peer); err == nil && p.Up && !slices.Contains(out, id) {
				out = append(out, id)
			}
		}
	}
	return out
}

// tunnelPeer tells the host that a stream to s's peer opened or closed
// (p2phost.Host.TunnelOpened, TunnelClosed).
func tunnelPeer(s registry.StreamInfo, change func(peer.ID)) {
	if id, err := peer.Decode(s.Peer); err == nil {
		change(id)
	}
}

// PingResult is one round trip of `p2ptun ping`.
type PingResult = p2phost.PingResult

// Ping connects to a peer (PEER-ADDR forms as for Forward) and measures
// count round trips with libp2p's ping protocol, saying which path each
// took. It uses relayed connections, limited or not.
func (n *Node) Ping(ctx context.Context, peerAddr string, count int) ([]PingResult, error) {
	if count < 1 || count > 1000 {
		return nil, fmt.Errorf("%w: ping count %d: use 1 to 1000", ErrUsage, count)
	}
	pi, err := spec.ParsePeerAddr(peerAddr)
	if err != nil {
		return nil, err
	}
	if err := n.preparePeer(pi, "ping another peer"); err != nil {
		return nil, err
	}
	ctx = network.WithAllowLimitedConn(ctx, "p2ptun ping")
	if err := n.connect(ctx, pi, false); err != nil {
		return nil, err
	}
	out, err := n.p2p.Ping(ctx, pi.ID, count)
	if err != nil {
		return out, fmt.Errorf("%w: %w", ErrUnreachable, err)
	}
	return out, nil
}

// path names the best current path to p.
func (n *Node) path(p peer.ID) string { return n.p2p.Path(p) }

// RTT returns the smoothed round-trip time to p that libp2p's ping has
// measured, or 0 if none has.
func (n *Node) RTT(p string) time.Duration {
	id, err := peer.Decode(p)
	if err != nil {
		return 0
	}
	return n.p2p.RTT(id)
}

// PeerState is a peer as `p2ptun status` shows it: connected now, or named
// by a tunnel (a forward's peer, or one of its several) and not connected.
type PeerState struct {
	Peer      string
	Connected bool
	Path      string        // "direct", "relayed via <relay>", or "not connected"
	RTT       time.Duration // smoothed round-trip time; 0 if not yet measured
	Tunnel    bool          // a tunnel names it
}

// Peers reports the connected peers and the tunnels' peers, sorted by ID.
func (n *Node) Peers() []PeerState {
	if n.host == nil {
		return nil
	}
	tunnel := make(map[peer.ID]bool)
	for _, l := range n.listeners.List() {
		for _, p := range append([]registry.ListenerPeer{{Peer: l.Peer}}, l.Peers...) {
			if id, err := peer.Decode(p.Peer); err == nil {
				tunnel[id] = true
			}
		}
	}
	ids := slices.Compact(slices.Sorted(slices.Values(append(n.host.Network().Peers(), slices.Collect(maps.Keys(tunnel))...))))
	out := make([]PeerState, len(ids))
	for i, id := range ids {
		out[i] = PeerState{Peer: id.String(), Connected: len(n.host.Network().ConnsToPeer(id)) > 0,
			Path: n.path(id), RTT: n.p2p.RTT(id), Tunnel: tunnel[id]}
	}
	return out
}
