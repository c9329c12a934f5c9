// Package access owns the node-wide connection policy: an allow list (when
// set, the only peers that may connect) and a deny list (peers that never
// may), enforced as a libp2p ConnectionGater on every dial and every
// secured inbound connection, before any protocol runs.
//
// It does not persist the policy (config does) or close connections that a
// change disallows (node does).
package access
