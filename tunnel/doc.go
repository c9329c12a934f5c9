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
// It does not register tunnels in the listener registry (the node does,
// before the first connection is served), parse specs, dial peers or
// targets itself, or copy bytes (package streams does).
package tunnel
