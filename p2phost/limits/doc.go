// Package limits builds go-libp2p's resource manager from the config's
// limits, over go-libp2p's autoscaled defaults: the node-wide, per-peer
// and per-protocol stream caps, memory, and the caps on unauthenticated
// inbound connections (in total and per source address, counted until
// their handshake names the peer). It logs each refusal once per peer per
// interval.
//
// It builds the limiter only: p2phost hands it to the host, and the
// connection manager, the access policy and the handshake timeout are
// p2phost's.
package limits
