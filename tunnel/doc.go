// Package tunnel is the seam every kind of tunnel plugs into: one
// accept → record → open → bridge → finish lifecycle.
//
// A Tunnel owns the lifetime context, the shutdown of accepting
// (StopAccepting, Close), the record of each connection in the stream
// registry, the bridge (streams.Pipe) and its finish: byte counts, the
// registry's hooks (events, metrics) and the wait group that Close waits
// on. A kind supplies only how it accepts (a Kind: a net.Listener's accept
// loop, a libp2p stream handler, one API connection) and what it opens for
// each connection (an Opener: a libp2p stream to a peer, a local target).
//
// Start binds the kind, then calls Config.Register, then lets the kind
// accept: a tunnel is in the listener registry, and its ID in every
// record, before its first connection is served. The registry itself is
// its owner's (the node's), as are parsing specs; it dials nothing itself
// and copies no bytes (package streams does).
package tunnel
