// Package access owns the node-wide connection policy: an allow list (when
// set, the only peers that may connect) and a deny list (peers that never
// may), enforced as a libp2p ConnectionGater on every dial, and on every
// inbound connection once it is upgraded, before it serves any stream (the
// swarm then closes it with libp2p's ConnGated code, which a p2ptun peer
// reads as "refused by the peer's access policy").
//
// It does not persist the policy (config does) or close connections that a
// change disallows (node does).
package access
