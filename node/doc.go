// Package node owns the running p2ptun node: it builds the libp2p host from
// the config (identity, transports, security, yamux, timeouts), owns the
// listener and stream registries, and offers the operations (listen,
// forward, pipe, close, list) that the control API uses.
//
// It parses and validates the user-facing strings (protocols, multiaddrs,
// peer addresses) so that every front end reports the same errors. It knows
// nothing about HTTP or flags.
package node
