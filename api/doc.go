// Package api owns the daemon's control API as both sides see it: its wire
// types (every request and reply body, and so every `p2ptun … --json`
// document: kubo's `ipfs p2p` field names plus p2ptun's own, in types.go),
// the conversions from node values to them (convert.go), the error codes
// that carry node sentinels across the socket (errors.go), and the Go
// client the CLI uses to call it. Node values are never serialised as
// they are: the server converts them field by field, so a rename inside
// node is a compile error here rather than a change to scripts' JSON.
//
// The HTTP server is package api/server, which only the daemon imports;
// the framed protocol of a pipe (POST /v0/pipe, upgraded) is package
// api/pipe, which both sides use.
//
// The server translates node errors into status codes and codes
// (WriteError); the client translates them back into the node's sentinel
// errors, so callers check errors.Is(err, node.ErrUnreachable) on either
// side of the socket.
package api
