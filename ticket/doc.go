// Package ticket owns the text form of a share ticket: one copy-pasteable
// line, p2ptun1…, that names a peer, the addresses it can be dialed on and
// the protocol it serves, and may carry an invite's secret and expiry.
//
// It encodes and decodes tickets and checks that a decoded one is whole and
// well formed (a checksum catches a line cut short or mistyped). It does not
// create invites, decide whether one is still valid, or dial anything: the
// node does.
package ticket
