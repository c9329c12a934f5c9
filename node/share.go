package node

import (
	"context"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/p2ptun/p2ptun/config"
	"github.com/p2ptun/p2ptun/invite"
	"github.com/p2ptun/p2ptun/listen"
)

// InviteProtocol is the internal protocol on which a forwarding node
// presents an invite's secret to the listening node (invite.Protocol).
const InviteProtocol = invite.Protocol

// DefaultInviteTTL is how long an invite stays redeemable when
// ShareRequest.TTL is zero.
const DefaultInviteTTL = invite.DefaultTTL

// ShareRequest asks for a ticket to one of the node's listeners.
type ShareRequest struct {
	Protocol string
	// Invite makes the ticket a single-use invite: the first peer that
	// presents it joins the listener's allowlist.
	Invite bool `json:",omitempty"`
	// TTL is how long the invite can be redeemed; zero means
	// DefaultInviteTTL. Only for invites.
	TTL config.Duration `json:",omitzero"`
}

// Share is a ticket and what it says, as `p2ptun share --json` prints it
// (invite.Share).
type Share = invite.Share

// Share returns a ticket naming this node, its current addresses (relay
// addresses included) and the protocol of an existing listener, which it
// fails with ErrNotFound without (invite.Book.Share). With r.Invite, the
// ticket also carries a new invite's secret; the node keeps only its
// hash, in memory.
func (n *Node) Share(_ context.Context, r ShareRequest) (Share, error) {
	if n.isClosed() {
		return Share{}, ErrClosed
	}
	out, err := n.invites.Share(n.host.ID(), n.host.Addrs(), n.listeners.List(), invite.Request{Protocol: r.Protocol, Invite: r.Invite, TTL: r.TTL.Std()})
	if err != nil || !r.Invite {
		return out, err
	}
	if allow, _ := n.opts.Access.Lists(); len(allow) > 0 {
		n.log.Warn("the node-wide access allow list is set: an invited peer cannot connect unless it is on it too (p2ptun access allow PEER)", "proto", out.Protocol)
	}
	return out, nil
}

// serve hands a running listener to the invite book, so that invites can
// name it, and returns the Close to register, which forgets it and its
// invites.
func (n *Node) serve(id uint64, l *listen.Listener) func() error {
	forget := n.invites.Serve(id, func(p peer.ID) error {
		if err := n.listeners.AllowPeer(id, p.String()); err != nil {
			return err
		}
		l.Allow(p)
		return nil
	})
	return func() error {
		forget()
		return l.Close()
	}
}
