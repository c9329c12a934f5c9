// Package api owns the daemon's control API: HTTP with JSON bodies on a
// Unix socket that only its owner may use (mode 0600), the JSON shapes it
// returns (kubo's `ipfs p2p` field names plus p2ptun's own), and the Go
// client the CLI uses to call it.
//
// One route, POST /v0/pipe, upgrades its connection (101 Switching
// Protocols) to carry one libp2p stream's bytes for `p2ptun pipe`, in
// frames that can say what a Unix socket cannot: a half-close, a clean
// end, and a reset (pipeconn.go).
//
// The server translates requests into node operations and node errors into
// status codes; the client translates them back into the node's sentinel
// errors, so callers check errors.Is(err, node.ErrUnreachable) on either
// side of the socket.
package api
