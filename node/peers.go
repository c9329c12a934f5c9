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
	"github.com/p2ptun/p2ptun/spec"
)

// protectTag marks, in the connection manager, peers with live tunnels:
// trimming spares them, however many other peers the DHT brings.
const protectTag = "p2ptun-tunnel"

// tunnelOpened counts a live stream to peer p; its first protects p from
// the connection manager's trimming.
func (n *Node) tunnelOpened(p string) {
	id, err := peer.Decode(p)
	if err != nil {
		return
	}
	n.protectMu.Lock()
	defer n.protectMu.Unlock()
	if n.protected[id]++; n.protected[id] == 1 {
		n.host.ConnManager().Protect(id, protectTag)
	}
}

// tunnelClosed uncounts a live stream to peer p; its last unprotects p.
func (n *Node) tunnelClosed(p string) {
	id, err := peer.Decode(p)
	if err != nil {
		return
	}
	n.protectMu.Lock()
	defer n.protectMu.Unlock()
	if n.protected[id]--; n.protected[id] <= 0 {
		delete(n.protected, id)
		n.host.ConnManager().Unprotect(id, protectTag)
	}
}

// activePeers are the peers with live streams (the keys of the set that
// tunnelOpened and tunnelClosed keep, so that a round costs one entry per
// peer, not one per stream) and the peers of forwards with several that
// are up (to measure their RTT, and to notice one that stops answering),
// for the keepalive.
func (n *Node) activePeers() []peer.ID {
	n.protectMu.Lock()
	out := slices.Collect(maps.Keys(n.protected))
	n.protectMu.Unlock()
	for _, l := range n.listeners.List() {
		for _, p := range l.Peers {
			if id, err := peer.Decode(p.Peer); err == nil && p.Up && !slices.Contains(out, id) {
				out = append(out, id)
			}
		}
	}
	return out
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
