package node

import (
	"context"
	"errors"
	"fmt"
	"syscall"

	"github.com/p2ptun/p2ptun/forward"
	"github.com/p2ptun/p2ptun/forward/balance"
	"github.com/p2ptun/p2ptun/invite"
	"github.com/p2ptun/p2ptun/registry"
	"github.com/p2ptun/p2ptun/spec"
)

// forward builds the near side of s, a forward spec, and registers it
// through the seam: it binds, then registers (Config.Register, under its
// bound address, a port 0 made real), then accepts, so from its first
// client on it is listed and its connections are recorded under its ID.
// A new kind of forward is built here, or in a file like this.
func (n *Node) forward(ctx context.Context, s spec.Spec) (registry.Listener, error) {
	pi := s.Peer
	if len(s.Peers) > 0 {
		if err := n.reachPeers(ctx, s); err != nil { // balance.go
			return registry.Listener{}, err
		}
	} else if err := n.preparePeer(pi, "forward to another peer"); err != nil {
		return registry.Listener{}, err
	} else if !s.Lazy {
		if err := n.connect(ctx, pi, true); err != nil {
			return registry.Listener{}, err
		}
	}
	if len(s.Invite) > 0 {
		if err := invite.Present(ctx, n.host, pi.ID, s.Invite, s.AllowLimited, n.opts.Timeouts.Dial.Std(), n.opts.Timeouts.StreamOpen.Std()); err != nil {
			return registry.Listener{}, err
		}
	}
	rec := &registry.Listener{
		Name:          s.Name,
		Kind:          registry.KindForward,
		Protocol:      string(s.Protocol),
		TargetAddress: "/p2p/" + pi.ID.String(),
		Peer:          pi.ID.String(),
		Socks:         s.Socks,
	}
	several(s, rec)
	var (
		f      *forward.Forward
		regErr error
	)
	f, err := forward.New(n.host, forward.Config{
		Side: n.side(s, func() (id uint64, err error) {
			rec.ListenAddress = f.Addr().String()
			id, regErr = n.register(rec, f.StopAccepting, func(uint64) func() error { return f.Close })
			return id, regErr
		}),
		ListenAddr:        s.Listen,
		Peer:              pi.ID,
		Peers:             peerIDs(s.Peers),
		Balance:           balance.Policy(s.Balance),
		PeerChanged:       n.peerChanged(rec),
		RTT:               n.p2p.RTT,
		DialTimeout:       n.opts.Timeouts.Dial.Std(),
		StreamOpenTimeout: n.opts.Timeouts.StreamOpen.Std(),
		AllowLimited:      s.AllowLimited,
		Listen:            n.opts.BindForward,
		Datagrams:         n.datagrams(),
		Socks:             s.Socks,
	})
	if err != nil {
		return registry.Listener{}, err
	}
	if len(s.Peers) > 0 {
		rec.PeerStates = f.Peers
	}
	if err := n.run(ctx, rec, f.Start, f.Close); err != nil {
		switch {
		case regErr != nil:
			return registry.Listener{}, regErr
		case errors.Is(err, syscall.EADDRINUSE):
			return registry.Listener{}, fmt.Errorf("%w: %s: pick another port, or 0 for a free one", ErrAddrInUse, s.Listen)
		}
		return registry.Listener{}, fmt.Errorf("binding %s: %w", s.Listen, err)
	}
	n.log.Info("forward opened", "proto", rec.Protocol, "laddr", rec.ListenAddress, "peer", rec.Peer)
	return snapshot(rec), nil
}
