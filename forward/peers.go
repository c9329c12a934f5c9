package forward

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	"github.com/libp2p/go-libp2p/p2p/net/swarm"
	msmux "github.com/multiformats/go-multistream"

	"github.com/p2ptun/p2ptun/forward/balance"
	"github.com/p2ptun/p2ptun/oneline"
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
// p took the protocol before the stream is used. To a peer whose protocols
// identify has reported, libp2p opens a stream "lazily": the protocol is
// agreed on with the first bytes written, so a peer whose listener closed
// a moment ago would take the client's first bytes and only then refuse.
// A read of no bytes runs that handshake now and returns its outcome, so
// that the connection can still move on to the next peer. A stream the
// swarm returns itself was negotiated already (and a read of no bytes
// would wait for data on it).
func (f *Forward) openNegotiated(ctx context.Context, p peer.ID, g *peerdial.Gate) (network.Stream, error) {
	s, err := f.openStreamTo(ctx, p, g)
	if err != nil {
		return nil, err
	}
	if _, negotiated := s.(*swarm.Stream); negotiated {
		return s, nil
	}
	_ = s.SetReadDeadline(time.Now().Add(f.cfg.StreamOpenTimeout))
	_, err = s.Read(nil)
	_ = s.SetReadDeadline(time.Time{})
	if err == nil {
		return s, nil
	}
	_ = s.Reset()
	var ns msmux.ErrNotSupported[protocol.ID]
	if errors.As(err, &ns) {
		return nil, fmt.Errorf("%s: %w %s", p, peerdial.ErrNoListener, f.cfg.Protocol)
	}
	return nil, fmt.Errorf("opening %s stream to peer %s: %s", f.cfg.Protocol, p, oneline.Error(err))
}

// Peers reports the state of the peers of a forward with several, in the
// order given; nil for a forward with one peer.
func (f *Forward) Peers() []registry.ListenerPeer {
	if f.set == nil {
		return nil
	}
	return f.set.States()
}
