// Package api owns the daemon's control API: HTTP with JSON bodies on a
// Unix socket that only its owner may use (mode 0600), its wire types (every
// request and reply body, and so every `p2ptun … --json` document: kubo's
// `ipfs p2p` field names plus p2ptun's own, in types.go), and the Go client
// the CLI uses to call it. Node values are never serialised as they are:
// the server converts them field by field (convert.go), so a rename inside
// node is a compile error here rather than a change to scripts' JSON.
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
