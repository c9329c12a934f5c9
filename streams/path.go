package streams

import (
	"github.com/libp2p/go-libp2p/core/network"
	ma "github.com/multiformats/go-multiaddr"
)

// Path describes how a libp2p connection reaches its peer: "direct", or
// "relayed via <relay peer ID>" for a circuit relay connection.
func Path(c network.Conn) string {
	addr := c.RemoteMultiaddr()
	relay := ""
	for _, comp := range addr {
		switch comp.Code() {
		case ma.P_P2P:
			relay = comp.Value()
		case ma.P_CIRCUIT:
			if relay == "" {
				return "relayed"
			}
			return "relayed via " + relay
		}
	}
	return "direct"
}
