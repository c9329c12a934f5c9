package spec

import (
	"slices"
	"strings"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	ma "github.com/multiformats/go-multiaddr"
)

// Balance is how a forward with several peers picks the peer of each new
// connection, among the peers that are up.
type Balance string

// The balance policies.
const (
	// BalanceFailover picks the first peer that is up, in the order given:
	// the others are standbys. The default.
	BalanceFailover Balance = "failover"
	// BalanceRTT picks the peer with the lowest measured round-trip time.
	BalanceRTT Balance = "rtt"
	// BalanceRoundRobin takes the peers that are up in turn.
	BalanceRoundRobin Balance = "round-robin"
)

// Balances are the policies, in the order the help lists them.
var Balances = []Balance{BalanceFailover, BalanceRTT, BalanceRoundRobin}

// ParseBalance parses a policy name; "" is BalanceFailover.
func ParseBalance(s string) (Balance, error) {
	if s == "" {
		return BalanceFailover, nil
	}
	if b := Balance(s); slices.Contains(Balances, b) {
		return b, nil
	}
	names := make([]string, len(Balances))
	for i, b := range Balances {
		names[i] = string(b)
	}
	return "", invalidf("balance %q is not a policy: use %s", s, strings.Join(names, ", "))
}

// parseForwardPeers parses the peers of a forward with several (r.Peers)
// and its balance policy; r.Peer, r.Addrs and an invite belong to a
// forward with one peer.
func parseForwardPeers(r Request, proto protocol.ID, laddr ma.Multiaddr) (Spec, error) {
	switch {
	case r.Peer != "" && len(r.Peers) > 0:
		return Spec{}, invalidf("a forward takes one peer or a list of peers, not both: put every peer in the list")
	case len(r.Peers) < 2:
		return Spec{}, invalidf("balancing needs two or more peers (got %d): list them after LISTEN-ADDR, or in peers = [...] in a [[forward]] table", len(r.Peers))
	case len(r.Addrs) > 0:
		return Spec{}, invalidf("with several peers, give each peer's address in the list itself (/ip4/HOST/tcp/PORT/p2p/ID), not as extra addresses")
	case len(r.Invite) > 0:
		return Spec{}, invalidf("an invite is for one peer: redeem it with a forward to that peer alone")
	}
	bal, err := ParseBalance(r.Balance)
	if err != nil {
		return Spec{}, err
	}
	if err := checkSocks(r, laddr); err != nil {
		return Spec{}, err
	}
	if len(r.Peers) > maxPeers {
		return Spec{}, invalidf("%d peers, more than %d", len(r.Peers), maxPeers)
	}
	peers := make([]peer.AddrInfo, 0, len(r.Peers))
	for _, s := range r.Peers {
		pi, err := r.Aliases.PeerAddr(s)
		if err != nil {
			return Spec{}, err
		}
		if slices.ContainsFunc(peers, func(p peer.AddrInfo) bool { return p.ID == pi.ID }) {
			return Spec{}, invalidf("peer %s is listed twice: list each peer once", pi.ID)
		}
		peers = append(peers, pi)
	}
	return Spec{
		Kind: KindForward, Name: r.Name, Protocol: proto, Listen: laddr, Peers: peers, Balance: bal,
		Lazy: r.Lazy, AllowLimited: r.AllowLimited, Save: r.Save, Socks: r.Socks, Request: clone(r), Names: r.used(),
	}, nil
}

// maxPeers caps the peers of one forward.
const maxPeers = 32
