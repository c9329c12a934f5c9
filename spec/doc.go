// Package spec owns the typed tunnel spec: what a listen, forward or pipe
// asks for (its kind, name, protocol, addresses, peer and options), parsed
// and validated once from the text a user wrote on the command line, in an
// API request body or in a config table. Downstream code (the node, the
// API server, the config loader) takes a Spec and never re-validates a
// string.
//
// Every parse error wraps ErrInvalid (node.ErrUsage, exit code 2) and is a
// *Error whose Reason is the one line that says what to do. It does not
// dial, bind or look at a host: whether a peer is this node, reachable or
// allowed is the node's to decide.
package spec
