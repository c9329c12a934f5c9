// Package server serves the control API (package api) for a node: HTTP
// with JSON bodies on a Unix socket that only its owner may use (mode
// 0600 in a directory only the owner can write; on Linux, SO_PEERCRED
// refuses other users' processes), with a reserve of file descriptors so
// that it still answers when tunnels have used up the process's limit.
// Its handlers translate requests into node operations and node values
// into api's wire types (api's converters), errors into api's codes, and
// upgrade POST /v0/pipe to a pipe (package pipe).
//
// The daemon imports it; the CLI does not: it speaks to a server through
// api.Client only.
package server
