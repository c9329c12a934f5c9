package access

import (
	"log/slog"

	"github.com/libp2p/go-libp2p/core/network"
)

// CloseRefused closes the connections on net of the peers p refuses, with
// the code a refused connection carries (ConnGated), so that a p2ptun peer
// learns why, and logs each such peer to log. A Store's owner calls it
// from StoreConfig.Changed.
func (p *Policy) CloseRefused(net network.Network, log *slog.Logger) {
	for _, id := range net.Peers() {
		if !p.Allowed(id) {
			for _, c := range net.ConnsToPeer(id) {
				_ = c.CloseWithError(network.ConnGated)
			}
			log.Info("closed connections to a peer the access policy no longer allows", "peer", id.String())
		}
	}
}
