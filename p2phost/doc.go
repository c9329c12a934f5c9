// Package p2phost builds p2ptun's libp2p host from the config, one small
// constructor per concern (transports, security, muxer, resource manager,
// connection manager, relay, NAT, DHT), and runs the host's background
// work: the keepalive and ping (package keepalive), relay reservations,
// DHT bootstrap, mDNS and the peer address cache (peers.json). It checks
// the swarm addresses before binding them. The resource manager's limits
// are built by package limits.
//
// It knows nothing about tunnels: the node tells it when a stream to a
// peer opens and closes (TunnelOpened, TunnelClosed), and the host
// protects the peers with live streams from the connection manager's
// trimming and has the keepalive watch them (with Config.KeepalivePeers).
package p2phost
