package invite

import (
	"fmt"
	"slices"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/p2ptun/p2ptun/registry"
	"github.com/p2ptun/p2ptun/spec"
	"github.com/p2ptun/p2ptun/ticket"
)

// Share is a ticket and what it says, as `p2ptun share --json` prints it.
type Share struct {
	Ticket   string
	Peer     string
	Protocol string
	// Addresses are the dialable addresses in the ticket, each ending in
	// /p2p/Peer, public ones first.
	Addresses []string
	// Expires is when the invite expires; absent for a plain ticket.
	Expires time.Time `json:",omitzero"`
}

// Request asks for a ticket to the listener on Protocol.
type Request struct {
	Protocol string
	// Invite makes the ticket a single-use invite: the first peer that
	// presents it joins the listener's allowlist.
	Invite bool
	// TTL is how long the invite can be redeemed; zero means DefaultTTL.
	// Only for invites.
	TTL time.Duration
}

// Share makes the ticket r asks for: it names peer self, its addresses
// addrs (in the order Addrs gives them) and the listener on r.Protocol
// among listeners (the node's records), which must be served; with
// r.Invite, it carries a new invite to that listener, whose hash alone
// the Book keeps. It fails with spec.ErrInvalid for a request that makes
// no sense, and registry.ErrNotFound when nothing listens on the protocol.
func (b *Book) Share(self peer.ID, addrs []ma.Multiaddr, listeners []registry.Listener, r Request) (Share, error) {
	ttl := r.TTL
	switch {
	case ttl != 0 && !r.Invite:
		return Share{}, fmt.Errorf("%w: a TTL applies to invites only; add --invite, or drop --ttl", spec.ErrInvalid)
	case ttl < 0:
		return Share{}, fmt.Errorf("%w: TTL %s is negative", spec.ErrInvalid, ttl)
	case ttl == 0 && r.Invite:
		ttl = DefaultTTL
	}
	proto, err := spec.ParseProtocol(r.Protocol, true)
	if err != nil {
		return Share{}, err
	}
	i := slices.IndexFunc(listeners, func(l registry.Listener) bool {
		return l.Kind == registry.KindListen && l.Protocol == string(proto)
	})
	if i < 0 {
		return Share{}, fmt.Errorf("%w: nothing listens on %s here: open it first with `p2ptun listen %s TARGET --invite-only` (or --allow PEER), see `p2ptun ls`", registry.ErrNotFound, proto, proto)
	}
	if r.Invite && listeners[i].AllowAll {
		return Share{}, fmt.Errorf("%w: the listener on %s allows every peer already: share it without --invite", spec.ErrInvalid, proto)
	}
	return b.share(self, addrs, listeners[i].ID, listeners[i].Protocol, ttl)
}

// share makes a ticket naming peer self, its addresses addrs and proto.
// With ttl > 0 the ticket carries a new invite to the served listener
// listenerID, which expires ttl from now.
func (b *Book) share(self peer.ID, addrs []ma.Multiaddr, listenerID uint64, proto string, ttl time.Duration) (Share, error) {
	t := ticket.Ticket{Peer: self, Protocol: proto, Addrs: Addrs(addrs)}
	var d Draft
	if ttl > 0 {
		d = b.Draft(ttl)
		t.Secret, t.Expires = d.Secret, d.Expires
	}
	s, err := t.Encode()
	if err != nil {
		return Share{}, fmt.Errorf("making the ticket: %w", err)
	}
	suffix := "/p2p/" + t.Peer.String()
	out := Share{Ticket: s, Peer: t.Peer.String(), Protocol: t.Protocol, Addresses: make([]string, len(t.Addrs))}
	for i, a := range t.Addrs {
		out.Addresses[i] = a.String() + suffix
	}
	if ttl <= 0 {
		return out, nil
	}
	if err := b.Add(listenerID, proto, d); err != nil {
		return Share{}, err
	}
	// The ticket says the second; the Book enforces the exact time.
	out.Expires = t.Expires.UTC()
	b.cfg.Logger.Info("invite created", "proto", proto, "expires", out.Expires.Format(time.RFC3339))
	return out, nil
}
