package node

import (
	"context"
	"fmt"
	"strings"
	"sync"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/p2ptun/p2ptun/registry"
	"github.com/p2ptun/p2ptun/spec"
	"github.com/p2ptun/p2ptun/telemetry"
)

// A forward with several peers (spec.Spec.Peers) is built by node.forward
// like any forward, with these few differences: every peer is prepared,
// and unless Lazy at least one must be reachable; the record lists the
// peers and the policy, and reports their states; the forward's peer
// changes become events, metrics and log lines.

// reachPeers prepares each peer of s as preparePeer does and, unless
// s.Lazy, dials them all at once: it fails only if none can be reached
// (the others are redialed by the forward in the background).
func (n *Node) reachPeers(ctx context.Context, s spec.Spec) error {
	for _, pi := range s.Peers {
		if err := n.preparePeer(pi, "list other peers"); err != nil {
			return err
		}
	}
	if s.Lazy {
		return nil
	}
	errs := make([]error, len(s.Peers))
	var wg sync.WaitGroup
	for i, pi := range s.Peers {
		wg.Go(func() { errs[i] = n.connect(ctx, pi, true) })
	}
	wg.Wait()
	more := make([]string, 0, len(errs)-1)
	for _, err := range errs {
		if err == nil {
			return nil
		}
		more = append(more, err.Error())
	}
	// One line: the first error, which says what to do, then the others.
	return fmt.Errorf("none of the forward's %d peers can be reached: %w; %s", len(s.Peers), errs[0], strings.Join(more[1:], "; "))
}

// several fills in the record of a forward with several peers: its
// target lists them (/p2p/A,/p2p/B), and its policy.
func several(s spec.Spec, rec *registry.Listener) {
	if len(s.Peers) == 0 {
		return
	}
	targets := make([]string, len(s.Peers))
	for i, pi := range s.Peers {
		targets[i] = "/p2p/" + pi.ID.String()
	}
	rec.TargetAddress, rec.Peer, rec.Balance = strings.Join(targets, ","), "", string(s.Balance)
}

// peerIDs are the IDs of peers.
func peerIDs(peers []peer.AddrInfo) []peer.ID {
	if len(peers) == 0 {
		return nil
	}
	out := make([]peer.ID, len(peers))
	for i, pi := range peers {
		out[i] = pi.ID
	}
	return out
}

// peerChanged tells the events, the metrics and the log that a peer of
// the forward rec went down or came back up (telemetry.ForwardPeer).
func (n *Node) peerChanged(rec *registry.Listener) func(p peer.ID, up bool, err error) {
	return telemetry.ForwardPeer(&n.events, n.metrics, n.log, rec)
}
