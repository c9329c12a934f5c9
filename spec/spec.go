package spec

import (
	"slices"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/p2ptun/p2ptun/oneline"
	"github.com/p2ptun/p2ptun/socks"
	"github.com/p2ptun/p2ptun/ticket"
)

// Kind is what a spec makes.
type Kind string

// The kinds of spec: the far side of a tunnel, its near side, and one
// stream for the CLI's stdin/stdout.
const (
	KindListen  Kind = "listen"
	KindForward Kind = "forward"
	KindPipe    Kind = "pipe"
)

// Request is a tunnel as a user wrote it: command-line arguments and
// flags, an API request body, a config table. Each Parse function reads
// the fields of its kind and ignores the others.
type Request struct {
	// Name labels the tunnel in `ls`, events and metrics; optional.
	Name     string `json:",omitempty"`
	Protocol string
	// Target is where a listener's streams go: a multiaddr or host:port
	// (listen).
	Target string `json:",omitempty"`
	// ListenAddress is the local address a forward binds: a multiaddr or
	// host:port (forward).
	ListenAddress string `json:",omitempty"`
	// Peer is /p2p/ID, a bare ID, or a full multiaddr ending in /p2p/ID
	// (forward, pipe).
	Peer string `json:",omitempty"`
	// Addrs are more addresses of Peer (multiaddrs, with or without
	// /p2p/ID), as a ticket lists them (forward, pipe).
	Addrs []string `json:",omitempty"`
	// Allow lists the peers a listener lets in; AllowAll lets any peer;
	// InviteOnly lets Allow be empty: peers join by redeeming invites
	// (listen). One of the three is required.
	Allow      []string `json:",omitempty"`
	AllowAll   bool     `json:",omitempty"`
	InviteOnly bool     `json:",omitempty"`
	// ReportPeerID sends the caller's peer ID and a newline to the
	// target first (listen).
	ReportPeerID bool `json:",omitempty"`
	// ProxyProtocol, "v1" or "v2", sends a PROXY protocol header of that
	// version to the target first (listen); "" sends none.
	ProxyProtocol string `json:",omitempty"`
	// AllowCustomProtocol permits a protocol outside /x/.
	AllowCustomProtocol bool `json:",omitempty"`
	// Lazy skips connecting to the peer now; the first client connection
	// will (forward).
	Lazy bool `json:",omitempty"`
	// AllowLimited lets the tunnel use relayed connections that the relay
	// limits in time or data (forward, pipe).
	AllowLimited bool `json:",omitempty"`
	// Save also appends the tunnel to the config file (listen, forward).
	Save bool `json:",omitempty"`
	// Invite is an invite's secret, presented to the peer after connecting
	// and before anything is bound (forward). It cannot be Lazy.
	Invite []byte `json:",omitempty"`
	// Peers, instead of Peer, make a forward with several peers, in order
	// of preference: each a /p2p/ID, a bare ID or a full multiaddr ending
	// in /p2p/ID; two or more (forward).
	Peers []string `json:",omitempty"`
	// Balance is how a forward with several Peers picks one for each
	// connection: "failover" (default), "rtt" or "round-robin" (forward).
	Balance string `json:",omitempty"`
	// Egress makes a listener a SOCKS egress: no Target; each stream
	// names its destination, dialled only if a Permit rule matches it
	// (listen). Permit rules are HOST:PORTS (socks.ParseRule).
	Egress bool     `json:",omitempty"`
	Permit []string `json:",omitempty"`
	// Socks makes a forward a local SOCKS5 server whose requests the
	// peer's egress dials; Gateway lets it bind a non-loopback address
	// (forward).
	Socks   bool `json:",omitempty"`
	Gateway bool `json:",omitempty"`
	// Aliases resolve the names among Peer, Peers and Allow (see
	// Aliases); the parse does not keep them.
	Aliases Aliases `json:"-"`
}

// Spec is a parsed, valid tunnel spec. Only the fields of its Kind are
// set.
type Spec struct {
	Kind     Kind
	Name     string
	Protocol protocol.ID
	// Target is a listener's target: TCP (IP or DNS name), UDP, or
	// /unix/PATH.
	Target ma.Multiaddr
	// Listen is a forward's local bind address: an IP and a TCP or UDP
	// port.
	Listen ma.Multiaddr
	// Peer is the peer of a forward or pipe, with the addresses given for
	// it (those of its multiaddr, then Addrs).
	Peer peer.AddrInfo
	// Allow is a listener's allowlist, without duplicates, in the order
	// given.
	Allow []peer.ID
	// Peers are the peers of a forward with several (then Peer is
	// empty), in the order given, each with its addresses; Balance says
	// how one is picked for each connection (see balance.go).
	Peers   []peer.AddrInfo
	Balance Balance

	AllowAll, InviteOnly, ReportPeerID bool
	Lazy, AllowLimited, Save           bool
	Invite                             []byte
	// ProxyProtocol is a listener's PROXY protocol version, 1 or 2; 0 for
	// none.
	ProxyProtocol byte
	// Permit is a SOCKS egress's rules (a listener with Egress); Socks
	// makes a forward a SOCKS5 server (see Request).
	Egress, Socks bool
	Permit        socks.Rules

	// Request is the spec as it was written, for saving it to the config
	// file in the user's own form; Names are the names of peers it uses
	// (a subset of Request.Aliases), to parse it again as it was.
	Request Request
	Names   Aliases
}

// ParseListen parses and validates a listener: protocol, target, and an
// allowlist (or AllowAll, or InviteOnly).
func ParseListen(r Request) (Spec, error) {
	proto, err := ParseProtocol(r.Protocol, r.AllowCustomProtocol)
	if err != nil {
		return Spec{}, err
	}
	permit, err := parseEgress(r)
	if err != nil {
		return Spec{}, err
	}
	var target ma.Multiaddr
	if !r.Egress {
		if target, err = ParseTarget(r.Target); err != nil {
			return Spec{}, err
		}
	}
	allow := make([]peer.ID, 0, len(r.Allow))
	for _, s := range r.Allow {
		id, err := r.Aliases.Peer(s)
		if err != nil {
			return Spec{}, err
		}
		if !slices.Contains(allow, id) {
			allow = append(allow, id)
		}
	}
	if r.ReportPeerID && IsUDP(target) {
		return Spec{}, invalidf("--report-peer-id writes to a byte stream and %s is a UDP target: drop --report-peer-id", target)
	}
	if r.InviteOnly && r.AllowAll {
		return Spec{}, invalidf("--invite-only and --allow-all contradict each other: choose one")
	}
	pp, err := ParseProxyProtocol(r.ProxyProtocol)
	if err != nil {
		return Spec{}, err
	}
	if err := combineListen(r, target); err != nil {
		return Spec{}, err
	}
	if pp != 0 && r.ReportPeerID {
		return Spec{}, invalidf("a PROXY header and the reported peer ID both go to the target first: choose one (a v2 header carries the peer ID)")
	}
	if !r.AllowAll && len(allow) == 0 && !r.InviteOnly {
		return Spec{}, invalidf("listener allows no peer: pass --allow PEER (repeatable), --allow-all, or --invite-only")
	}
	return Spec{
		Kind: KindListen, Name: r.Name, Protocol: proto, Target: target, Allow: allow,
		AllowAll: r.AllowAll, InviteOnly: r.InviteOnly, ReportPeerID: r.ReportPeerID, Save: r.Save,
		ProxyProtocol: pp, Egress: r.Egress, Permit: permit,
		Request: clone(r), Names: r.used(),
	}, nil
}

// ParseForward parses and validates a forward: protocol, local address,
// peer and its addresses, and an invite's secret, if any.
func ParseForward(r Request) (Spec, error) {
	proto, err := ParseProtocol(r.Protocol, r.AllowCustomProtocol)
	if err != nil {
		return Spec{}, err
	}
	laddr, err := ParseListenAddr(r.ListenAddress)
	if err != nil {
		return Spec{}, err
	}
	if err := combineForward(r, laddr); err != nil {
		return Spec{}, err
	}
	if len(r.Peers) > 0 || r.Balance != "" {
		return parseForwardPeers(r, proto, laddr)
	}
	pi, err := parsePeer(r)
	if err != nil {
		return Spec{}, err
	}
	if err := checkSocks(r, laddr); err != nil {
		return Spec{}, err
	}
	if len(r.Invite) > 0 {
		if len(r.Invite) < ticket.MinSecretLen || len(r.Invite) > ticket.MaxSecretLen {
			return Spec{}, invalidf("an invite secret is %d to %d bytes, not %d", ticket.MinSecretLen, ticket.MaxSecretLen, len(r.Invite))
		}
		if r.Lazy {
			return Spec{}, invalidf("an invite is presented when the forward opens, so the forward cannot be --lazy; drop --lazy")
		}
	}
	return Spec{
		Kind: KindForward, Name: r.Name, Protocol: proto, Listen: laddr, Peer: pi,
		Lazy: r.Lazy, AllowLimited: r.AllowLimited, Save: r.Save, Invite: slices.Clone(r.Invite), Socks: r.Socks,
		Request: clone(r), Names: r.used(),
	}, nil
}

// ParsePipe parses and validates a pipe: peer and its addresses, then
// protocol (the order of `p2ptun pipe PEER-ADDR PROTO`).
func ParsePipe(r Request) (Spec, error) {
	pi, err := parsePeer(r)
	if err != nil {
		return Spec{}, err
	}
	proto, err := ParseProtocol(r.Protocol, r.AllowCustomProtocol)
	if err != nil {
		return Spec{}, err
	}
	return Spec{Kind: KindPipe, Protocol: proto, Peer: pi, AllowLimited: r.AllowLimited, Request: clone(r), Names: r.used()}, nil
}

// parsePeer parses r's peer and adds r's addresses to it.
func parsePeer(r Request) (peer.AddrInfo, error) {
	pi, err := r.Aliases.PeerAddr(r.Peer)
	if err != nil {
		return peer.AddrInfo{}, err
	}
	return WithAddrs(pi, r.Addrs)
}

// WithAddrs adds addrs, multiaddrs of pi's peer with or without /p2p/ID,
// to pi.
func WithAddrs(pi peer.AddrInfo, addrs []string) (peer.AddrInfo, error) {
	if len(addrs) > ticket.MaxAddrs {
		return pi, invalidf("%d peer addresses, more than %d", len(addrs), ticket.MaxAddrs)
	}
	pi.Addrs = slices.Clone(pi.Addrs)
	for _, s := range addrs {
		m, err := ma.NewMultiaddr(s)
		if err != nil {
			return pi, invalidf("peer address %q is not a valid multiaddr (%s)", s, oneline.Error(err))
		}
		transport, id := peer.SplitAddr(m)
		if id != "" && id != pi.ID {
			return pi, invalidf("peer address %s is for peer %s, not %s", m, id, pi.ID)
		}
		if len(transport) == 0 {
			return pi, invalidf("peer address %s has no transport, like /ip4/HOST/tcp/PORT", m)
		}
		pi.Addrs = append(pi.Addrs, transport)
	}
	return pi, nil
}

// ViaRelay reports whether the user addressed the peer through a relay.
func (s Spec) ViaRelay() bool {
	for _, pi := range append([]peer.AddrInfo{s.Peer}, s.Peers...) {
		for _, a := range pi.Addrs {
			if _, err := a.ValueForProtocol(ma.P_CIRCUIT); err == nil {
				return true
			}
		}
	}
	return false
}

// clone copies r's slices, so that a Spec shares nothing with its caller.
func clone(r Request) Request {
	r.Addrs, r.Allow, r.Invite = slices.Clone(r.Addrs), slices.Clone(r.Allow), slices.Clone(r.Invite)
	r.Peers = slices.Clone(r.Peers)
	r.Permit = slices.Clone(r.Permit)
	r.Aliases = nil
	return r
}

// TicketForward returns the forward request that binds listenAddr and
// forwards it to the peer and protocol t names, dialing the ticket's
// addresses and presenting its invite, if any.
func TicketForward(t ticket.Ticket, listenAddr string) Request {
	addrs := make([]string, len(t.Addrs))
	for i, a := range t.Addrs {
		addrs[i] = a.String()
	}
	return Request{
		Protocol: t.Protocol, ListenAddress: listenAddr, Peer: t.Peer.String(),
		Addrs: addrs, Invite: slices.Clone(t.Secret),
	}
}
