package p2phost

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
func (h *Host) dhtOption() (libp2p.Option, error) {
	var mode dht.ModeOpt
	switch h.cfg.DHT {
	case "", "off":
		return nil, nil
	case "client":
		mode = dht.ModeClient
	case "server":
		mode = dht.ModeServer
	case "auto":
		mode = dht.ModeAuto
	default:
		return nil, fmt.Errorf("%w: dht mode %q: use off, client, server or auto", ErrUsage, h.cfg.DHT)
	}
	prefix := protocol.ID(h.cfg.DHTPrefix)
	if prefix == "" {
		prefix = "/p2ptun"
	}
	return libp2p.Routing(func(lh host.Host) (routing.PeerRouting, error) {
		d, err := dht.New(lh, dht.ProtocolPrefix(prefix), dht.Mode(mode), dht.BootstrapPeers(h.cfg.Bootstrap...))
		h.dht = d
		return d, err
	}), nil
}

// bootstrapDHT connects to the bootstrap peers and fills the routing
// table in the background (the DHT owns that work; Close stops it).
func (h *Host) bootstrapDHT(ctx context.Context) {
	if h.dht == nil || len(h.cfg.Bootstrap) == 0 {
		return
	}
	for _, b := range h.cfg.Bootstrap {
		h.bg.Go(func() {
			cctx, cancel := context.WithTimeout(ctx, h.cfg.Timeouts.Dial.Std())
			defer cancel()
			if err := h.host.Connect(cctx, b); err != nil && ctx.Err() == nil {
				h.log.Warn("could not reach a DHT bootstrap peer", "peer", b.ID.String(), "err", err)
			}
		})
	}
	if err := h.dht.Bootstrap(ctx); err != nil {
		h.log.Warn("DHT bootstrap failed", "err", err)
	}
}
