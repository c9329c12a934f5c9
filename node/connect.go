package node

import (
	"context"
	"errors"
	"fmt"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/peerstore"

	"github.com/p2ptun/p2ptun/peerdial"
	"github.com/p2ptun/p2ptun/spec"
)

// preparePeer checks that pi is another peer, one that this node's access
// policy allows, and remembers the addresses the user gave for it: the
// one preparation before a forward, a pipe or a ping dials it. instead
// says what to do about the node's own ID ("forward to another peer").
func (n *Node) preparePeer(pi peer.AddrInfo, instead string) error {
	if pi.ID == n.host.ID() {
		return fmt.Errorf("%w: %s is this node's own peer ID; %s", ErrUsage, pi.ID, instead)
	}
	if !n.opts.Access.Allowed(pi.ID) {
		return fmt.Errorf("%w: peer %s is refused by this node's access policy; see `p2ptun access ls`, or run `p2ptun access allow %s`", ErrDenied, pi.ID, pi.ID)
	}
	if len(pi.Addrs) > 0 {
		n.host.Peerstore().AddAddrs(pi.ID, pi.Addrs, peerstore.PermanentAddrTTL)
	}
	return nil
}

// connect dials pi's peer unless connected, with the configured timeout,
// and says what to try when it cannot: through a relay (an address of pi
// is one), what the relay and the peer need; otherwise a running daemon,
// a full address, or (orLazy: a forward) --lazy.
func (n *Node) connect(ctx context.Context, pi peer.AddrInfo, orLazy bool) error {
	err := peerdial.Connect(ctx, n.host, pi.ID, n.opts.Timeouts.Dial.Std())
	if err == nil || errors.Is(err, ErrDenied) {
		return err // ErrDenied: the peer answered, it refuses this node
	}
	hint := fmt.Sprintf("is its daemon running? pass a full address like /ip4/HOST/tcp/PORT/p2p/%s", pi.ID)
	switch {
	case (spec.Spec{Peer: pi}).ViaRelay():
		hint = fmt.Sprintf("through a relay, both peers must be on the relay's allow list and %s must hold a reservation on it (it logs \"relay reservation held\")", pi.ID)
	case orLazy:
		hint += ", or --lazy to connect on first use"
	}
	return fmt.Errorf("%w (%s)", err, hint)
}
