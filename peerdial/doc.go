// Package peerdial owns reaching a peer: Connect (a dial bounded by a
// timeout that clears libp2p's own dial backoff first, and tells a peer
// whose access policy refuses this node from one that cannot be reached),
// NewStream and OpenStream (a stream for a protocol, its failure named:
// unreachable, no listener, a refusal's cause), DialCold and Cold (a
// dial that does not wait for identify, and a stream opened lazily on
// the connection it makes, whose Handshake names a failure as OpenStream
// would), a Gate for a caller that dials one peer again and again (one
// dial at a time, a redial backoff), and the sentinels ErrUnreachable and
// ErrNoListener.
//
// Its users are the near side of a tunnel (package forward, and its
// several peers' watchers), invites and the node's connect and pipe. It
// knows nothing of tunnels, clients or registries: what a failure means
// to a client (a reset, a refusal's cause, a log line) is its caller's.
package peerdial
