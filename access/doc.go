// Package access owns the node-wide connection policy: an allow list (when
// set, the only peers that may connect) and a deny list (peers that never
// may), enforced as a libp2p ConnectionGater on every dial, and on every
// inbound connection once it is upgraded, before it serves any stream (the
// swarm then closes it with libp2p's ConnGated code, which a p2ptun peer
// reads as "refused by the peer's access policy").
//
// A Store edits the policy at runtime together with the config file's
// lists (the policy minus a run's own peers), one edit at a time, and
// undoes an edit it cannot save. It does not write files (its owner's
// Save does, through config); a Policy closes the connections that a
// change disallows (CloseRefused) when its owner's Changed asks it to, on
// the owner's host.
package access
