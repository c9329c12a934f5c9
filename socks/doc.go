// Package socks is SOCKS5 dynamic forwarding (like ssh -D), both halves
// of it: the near side's handshake with a local SOCKS5 client (no
// authentication, CONNECT only), the request and verdict that travel at
// the start of the tunnel's stream (SOCKS5's own request and reply
// encoding), and the far side's permit rules: parsed once, matched
// against the requested name or the address it resolves to, resolved
// once so that what is checked is what is dialled.
//
// The protocol's parsing is github.com/armon/go-socks5's (NewRequest,
// NoAuthAuthenticator); this package writes only what that library does
// not export. It does not move bytes, open streams or dial: forward and
// listen do, through the tunnel seam. It imports nothing of ours.
package socks
