package node

import (
	"context"
	"fmt"

	"github.com/libp2p/go-libp2p"
	dht "github.com/libp2p/go-libp2p-kad-dht"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/protocol"
	"github.com/libp2p/go-libp2p/core/routing"
)

// dhtOption returns the libp2p option that gives the host a Kademlia DHT
// for peer routing: the host then looks a peer up when it has no address
// for it. It returns nil when the DHT is off.
func (n *Node) dhtOption() (libp2p.Option, error) {
	var mode dht.ModeOpt
	switch n.opts.DHT {
	case "", "off":
		return nil, nil
	case "client":
		mode = dht.ModeClient
	case "server":
		mode = dht.ModeServer
	case "auto":
		mode = dht.ModeAuto
	default:
		return nil, fmt.Errorf("%w: dht mode %q: use off, client, server or auto", ErrUsage, n.opts.DHT)
	}
	prefix := protocol.ID(n.opts.DHTPrefix)
	if prefix == "" {
		prefix = "/p2ptun"
	}
	return libp2p.Routing(func(h host.Host) (routing.PeerRouting, error) {
		d, err := dht.New(h, dht.ProtocolPrefix(prefix), dht.Mode(mode), dht.BootstrapPeers(n.opts.Bootstrap...))
		n.dht = d
		return d, err
	}), nil
}

// bootstrapDHT connects to the bootstrap peers and fills the routing
// table in the background (the DHT owns that work; Close stops it).
func (n *Node) bootstrapDHT(ctx context.Context) {
	if n.dht == nil || len(n.opts.Bootstrap) == 0 {
		return
	}
	for _, b := range n.opts.Bootstrap {
		n.bg.Go(func() {
			cctx, cancel := context.WithTimeout(ctx, n.opts.Timeouts.Dial.Std())
			defer cancel()
			if err := n.host.Connect(cctx, b); err != nil && ctx.Err() == nil {
				n.log.Warn("could not reach a DHT bootstrap peer", "peer", b.ID.String(), "err", err)
			}
		})
	}
	if err := n.dht.Bootstrap(ctx); err != nil {
		n.log.Warn("DHT bootstrap failed", "err", err)
	}
}
