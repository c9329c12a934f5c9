package forward

import (
	"context"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/p2ptun/p2ptun/peerdial"
)

func (f *Forward) openStream(ctx context.Context) (network.Stream, error) {
	if f.cfg.AllowLimited {
		ctx = network.WithAllowLimitedConn(ctx, "p2ptun forward --allow-limited")
	}
	if f.set != nil {
		return f.set.Open(ctx, f.openNegotiated)
	}
	return f.openStreamTo(ctx, f.cfg.Peer, &f.redial)
}

// openStreamTo connects to p through its redial gate g, then opens a
// stream.
func (f *Forward) openStreamTo(ctx context.Context, p peer.ID, g *peerdial.Gate) (network.Stream, error) {
	if err := f.connect(ctx, p, g); err != nil {
		return nil, err
	}
	return peerdial.NewStream(ctx, f.h, p, f.cfg.Protocol, f.cfg.StreamOpenTimeout)
}

// connect makes sure there is a connection to p, through its redial gate
// g: one dial at a time, whose outcome the clients arriving meanwhile
// share, and none during the backoff after a failed one.
func (f *Forward) connect(ctx context.Context, p peer.ID, g *peerdial.Gate) error {
	return g.Connect(ctx, f.h, p, f.cfg.DialTimeout, f.cfg.RedialMin, f.cfg.RedialMax)
}
