// Package invite owns single-use invites: the secrets a listening node
// hands out in a ticket, kept as their SHA-256 hashes with an expiry, the
// /p2ptun/invite stream protocol on which a forwarding node presents one,
// its verdicts, and the order of the addresses a ticket carries.
//
// It makes `p2ptun share`'s tickets: it checks the request and picks the
// listener a ticket names from the listener records the node hands it
// (Book.Share). It holds none of the node's registries: a running
// listener is handed to it as an ID and a func that allows a peer on it
// (Book.Serve). It does not encode tickets (package ticket) nor open
// tunnels.
package invite
