package node

import (
	"context"
	"fmt"
	"slices"

	"github.com/p2ptun/p2ptun/p2phost"
	"github.com/p2ptun/p2ptun/registry"
	"github.com/p2ptun/p2ptun/spec"
)

// Listener and StreamInfo are the records Listeners and Streams return;
// they are the registry's, named here so that callers above the node need
// not import the registry.
type (
	Listener   = registry.Listener
	StreamInfo = registry.StreamInfo
)

// Identity is what `p2ptun id` prints (p2phost.Identity).
type Identity = p2phost.Identity

// Identity returns the node's peer ID and its dialable addresses, each
// ending in /p2p/<ID>.
func (n *Node) Identity() Identity { return n.p2p.Identity() }

// Listen registers a protocol handler for s, a spec.KindListen spec. On
// error nothing is registered (and, with s.Save, nothing is saved).
func (n *Node) Listen(ctx context.Context, s spec.Spec) (registry.Listener, error) {
	return n.start(ctx, spec.KindListen, s)
}

// start opens s, which must be of kind k; with s.Save, as the config
// tunnel it is saved as, which a reload leaves alone.
func (n *Node) start(ctx context.Context, k spec.Kind, s spec.Spec) (registry.Listener, error) {
	if s.Kind != k {
		return registry.Listener{}, fmt.Errorf("%w: %s given a %q spec", ErrUsage, k, s.Kind)
	}
	if s.Save {
		return n.tunnels.Save(ctx, s)
	}
	return n.open(ctx, s)
}

// open builds and registers the tunnel of s: the one place that knows
// the kinds of tunnel.
func (n *Node) open(ctx context.Context, s spec.Spec) (registry.Listener, error) {
	if n.isClosed() {
		return registry.Listener{}, ErrClosed
	}
	switch s.Kind {
	case spec.KindListen:
		return n.listen(ctx, s)
	case spec.KindForward:
		return n.forward(ctx, s)
	}
	return registry.Listener{}, fmt.Errorf("%w: cannot open a %q tunnel", ErrUsage, s.Kind)
}

// Forward binds a local listener whose connections become streams to the
// peer of s, a spec.KindForward spec. Unless s.Lazy, it first connects to
// the peer and fails with ErrUnreachable if it cannot. On error nothing is
// bound or registered (and, with s.Save, nothing is saved).
func (n *Node) Forward(ctx context.Context, s spec.Spec) (registry.Listener, error) {
	return n.start(ctx, spec.KindForward, s)
}

// CloseRequest selects listeners to close (spec.CloseRequest). Exactly
// one field must be set.
type CloseRequest = spec.CloseRequest

// CloseListeners closes the listeners that r selects, and their streams. It returns
// how many it closed, or ErrNotFound when none matched.
func (n *Node) CloseListeners(_ context.Context, r CloseRequest) (int, error) {
	match, err := spec.ParseClose(r)
	if err != nil {
		return 0, err
	}
	count, err := n.listeners.CloseMatching(func(l *registry.Listener) bool {
		return match(l.Protocol, l.ListenAddress, l.TargetAddress)
	})
	if err == nil {
		n.log.Info("listeners closed", "count", count)
	}
	return count, err
}

// Listeners lists the listeners and forwards in the order they were opened.
func (n *Node) Listeners() []registry.Listener { return n.listeners.List() }

// Streams lists the live streams in the order they were opened.
func (n *Node) Streams() []registry.StreamInfo { return n.streams.List() }

// CloseStream aborts one stream and waits for it to end.
func (n *Node) CloseStream(ctx context.Context, id uint64) error {
	return n.streams.Close(ctx, id)
}

// CloseAllStreams aborts every live stream and waits for them to end.
func (n *Node) CloseAllStreams(ctx context.Context) (int, error) {
	return n.streams.CloseMatching(ctx, func(*registry.Stream) bool { return true })
}

func snapshot(l *registry.Listener) registry.Listener {
	c := *l
	c.AllowedPeers = slices.Clone(l.AllowedPeers)
	c.Close = nil
	return c
}
