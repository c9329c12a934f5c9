package forward

import (
	"context"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/p2ptun/p2ptun/forward/balance"
	"github.com/p2ptun/p2ptun/peerdial"
	"github.com/p2ptun/p2ptun/registry"
)

// newPeerSet returns the set of the peers of a forward with several
// (cfg.Peers), their health and the policy that picks among them.
func newPeerSet(h host.Host, cfg *Config) *balance.Set {
	return balance.New(h, balance.Config{
		Peers: cfg.Peers, Protocol: cfg.Protocol, Policy: cfg.Balance, AllowLimited: cfg.AllowLimited, RTT: cfg.RTT, Changed: cfg.PeerChanged,
		RedialMin: cfg.RedialMin, RedialMax: cfg.RedialMax,
	})
}

// openNegotiated opens a stream to p, as openStreamTo does, and makes sure
// p took the protocol before the stream is used (peerdial.Negotiate), so
// that a peer whose listener closed a moment ago fails the open rather
// than the client, and the connection can still move on to the next peer.
func (f *Forward) openNegotiated(ctx context.Context, p peer.ID, g *peerdial.Gate) (network.Stream, error) {
	s, err := f.openStreamTo(ctx, p, g)
	if err != nil {
		return nil, err
	}
	if err := peerdial.Negotiate(s, f.cfg.StreamOpenTimeout); err != nil {
		return nil, err
	}
	return s, nil
}

// Peers reports the state of the peers of a forward with several, in the
// order given; nil for a forward with one peer.
func (f *Forward) Peers() []registry.ListenerPeer {
	if f.set == nil {
		return nil
	}
	return f.set.States()
}
