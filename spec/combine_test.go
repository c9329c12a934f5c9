package spec

import (
	"testing"

	"github.com/p2ptun/p2ptun/internal/harness"
	"github.com/p2ptun/p2ptun/ticket"
)

// TestCombinations covers every pair of kinds and options a user can
// write on one command line or config table: each one parses (and keeps
// both options) or is refused with what to do.
func TestCombinations(t *testing.T) {
	id, b := harness.NewPeer(t), harness.NewPeerID(t)
	a := id.String()
	const udp = "/ip4/127.0.0.1/udp/53"
	permit := []string{"10.0.0.0/8:22"}
	tk := ticket.Ticket{Protocol: "/x/dns", Peer: id, Secret: make([]byte, ticket.MinSecretLen)}
	fromTicket := TicketForward(tk, "/ip4/127.0.0.1/udp/0")
	tests := []struct {
		name    string
		in      Request
		forward bool
		wantErr string // a substring of the reason; "" if it parses
		check   func(Spec) bool
	}{
		// UDP × each option.
		{name: "udp target, proxy protocol", in: Request{Protocol: "/x/dns", Target: udp, ProxyProtocol: "v2", AllowAll: true}, wantErr: "drop --proxy-protocol"},
		{name: "udp target, report peer ID", in: Request{Protocol: "/x/dns", Target: udp, ReportPeerID: true, AllowAll: true}, wantErr: "drop --report-peer-id"},
		{name: "udp target, egress", in: Request{Protocol: "/x/dns", Target: udp, Egress: true, Permit: permit, AllowAll: true}, wantErr: "drop the target"},
		{name: "udp target, permit", in: Request{Protocol: "/x/dns", Target: udp, Permit: permit, AllowAll: true}, wantErr: "only to an --egress listener"},
		{name: "udp target, invite only", in: Request{Protocol: "/x/dns", Target: udp, InviteOnly: true}, check: func(s Spec) bool { return IsUDP(s.Target) && s.InviteOnly }},
		{name: "udp forward, socks", forward: true, in: Request{Protocol: "/x/dns", ListenAddress: "/ip4/127.0.0.1/udp/1080", Peer: a, Socks: true}, wantErr: "bind a TCP address (e.g. 127.0.0.1:1080), or drop --socks"},
		{name: "udp forward, socks, several peers", forward: true, in: Request{Protocol: "/x/dns", ListenAddress: "/ip4/127.0.0.1/udp/1080", Peers: []string{a, b}, Socks: true}, wantErr: "or drop --socks"},
		{name: "udp forward, several peers", forward: true, in: Request{Protocol: "/x/dns", ListenAddress: "/ip4/127.0.0.1/udp/0", Peers: []string{a, b}, Balance: "round-robin"},
			check: func(s Spec) bool { return IsUDP(s.Listen) && len(s.Peers) == 2 && s.Balance == BalanceRoundRobin }},
		{name: "udp forward, ticket with invite", forward: true, in: fromTicket, check: func(s Spec) bool { return IsUDP(s.Listen) && s.Peer.ID.String() == a && len(s.Invite) > 0 }},
		// SOCKS × several peers.
		{name: "socks, several peers", forward: true, in: Request{Protocol: "/x/net", ListenAddress: "127.0.0.1:1080", Peers: []string{a, b}, Socks: true},
			check: func(s Spec) bool { return s.Socks && len(s.Peers) == 2 }},
		{name: "socks, several peers, not loopback", forward: true, in: Request{Protocol: "/x/net", ListenAddress: "0.0.0.0:1080", Peers: []string{a, b}, Socks: true}, wantErr: "pass --gateway"},
		{name: "socks gateway, several peers", forward: true, in: Request{Protocol: "/x/net", ListenAddress: "0.0.0.0:1080", Peers: []string{a, b}, Socks: true, Gateway: true},
			check: func(s Spec) bool { return s.Socks && len(s.Peers) == 2 }},
		{name: "gateway without socks, several peers", forward: true, in: Request{Protocol: "/x/net", ListenAddress: "127.0.0.1:0", Peers: []string{a, b}, Gateway: true}, wantErr: "add --socks, or drop --gateway"},
		// Egress × the target's preamble.
		{name: "egress, proxy protocol", in: Request{Protocol: "/x/net", Egress: true, Permit: permit, ProxyProtocol: "v1", AllowAll: true}, wantErr: "--proxy-protocol does not apply to an --egress listener"},
		{name: "egress, report peer ID", in: Request{Protocol: "/x/net", Egress: true, Permit: permit, ReportPeerID: true, AllowAll: true}, wantErr: "--report-peer-id does not apply"},
		// Several peers × one peer's things.
		{name: "several peers, invite", forward: true, in: Request{Protocol: "/x/web", ListenAddress: "127.0.0.1:0", Peers: []string{a, b}, Invite: make([]byte, ticket.MinSecretLen)}, wantErr: "an invite is for one peer"},
		{name: "ticket, balance", forward: true, in: func() Request { r := fromTicket; r.Balance = "rtt"; return r }(), wantErr: "balancing needs two or more peers"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			parse := ParseListen
			if tt.forward {
				parse = ParseForward
			}
			s, err := parse(tt.in)
			if tt.wantErr != "" {
				checkReason(t, err, tt.wantErr)
				return
			}
			if err != nil {
				t.Fatalf("parse(%+v): %v", tt.in, err)
			}
			if !tt.check(s) {
				t.Errorf("parse(%+v) = %+v: an option was lost", tt.in, s)
			}
		})
	}
}
