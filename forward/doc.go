// Package forward owns the outbound half of a tunnel: a local TCP listener
// whose every accepted connection becomes a new libp2p stream, with one
// protocol, to one remote peer, bridged byte for byte. It is a kind of
// package tunnel's lifecycle: it supplies the accept loop and the stream
// open; recording and bridging are the seam's, reaching the peer is
// package peerdial's, and the health and order of a forward's several
// peers are package forward/balance's. A UDP listen address makes it a
// UDP forward (udp.go): one socket, and a flow, one stream, per client
// address, its datagrams framed by streams.Flow.
//
// It does not register itself in the listener registry (the node does) but
// records every bridged connection in the stream registry it is given.
package forward
