// Package keepalive watches the peers that p2ptun has live tunnels with,
// on a libp2p host that p2phost built: every interval it pings each of
// them once over the connection it has, records the round trip in the
// peerstore (the RTT that `stream ls` shows), and cuts off a peer that
// answers no ping within the timeout, so that its streams end with a reset
// rather than hang on a connection that is dead but not closed. It also
// measures `p2ptun ping`'s round trips and names the path to a peer.
//
// It does not know which peers have tunnels (Config.Peers says, a set the
// host keeps as the node reports streams opening and closing), and it
// neither builds nor closes the host.
package keepalive
