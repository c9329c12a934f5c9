// Package listen owns the inbound half of a tunnel: a libp2p protocol
// handler that checks the calling peer against an allowlist, dials a local
// TCP (or Unix) target, optionally writes the caller's peer ID or a PROXY
// protocol header (proxyproto.go) first, and bridges the stream to it. It
// is a kind of package tunnel's lifecycle:
// it supplies the handler (how streams are accepted) and the checks and
// target dial (what is opened); recording and bridging are the seam's. A
// UDP target makes each stream one flow of datagrams (udp.go), sent to the
// target on a socket of its own.
//
// It does not register itself in the listener registry (the node does) but
// records every bridged connection in the stream registry it is given.
package listen
