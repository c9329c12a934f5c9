package invite

import (
	"fmt"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

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

// Share makes a ticket naming peer self, its addresses addrs (in the
// order Addrs gives them) and proto. With ttl > 0 the ticket carries a
// new invite to the served listener listenerID, which expires ttl from
// now; the Book keeps only its hash.
func (b *Book) Share(self peer.ID, addrs []ma.Multiaddr, listenerID uint64, proto string, ttl time.Duration) (Share, error) {
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
