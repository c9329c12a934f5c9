package spec

import (
	"slices"
	"testing"

	"github.com/p2ptun/p2ptun/internal/harness"
)

func TestParseForwardPeers(t *testing.T) {
	a, b, c := harness.NewPeerID(t), harness.NewPeerID(t), harness.NewPeerID(t)
	full := "/ip4/127.0.0.1/tcp/4001/p2p/" + b
	base := Request{Protocol: "/x/web", ListenAddress: "127.0.0.1:0"}
	with := func(f func(*Request)) Request { r := base; f(&r); return r }
	tests := []struct {
		name      string
		in        Request
		wantErr   string
		wantPeers []string
		wantBal   Balance
	}{
		{name: "two peers, default failover", in: with(func(r *Request) { r.Peers = []string{a, full} }), wantPeers: []string{a, b}, wantBal: BalanceFailover},
		{name: "rtt", in: with(func(r *Request) { r.Peers = []string{"/p2p/" + a, b, c}; r.Balance = "rtt" }), wantPeers: []string{a, b, c}, wantBal: BalanceRTT},
		{name: "round-robin, lazy", in: with(func(r *Request) { r.Peers = []string{c, a}; r.Balance = "round-robin"; r.Lazy = true }), wantPeers: []string{c, a}, wantBal: BalanceRoundRobin},
		{name: "unknown policy", in: with(func(r *Request) { r.Peers = []string{a, b}; r.Balance = "random" }), wantErr: `balance "random" is not a policy: use failover, rtt, round-robin`},
		{name: "one peer in the list", in: with(func(r *Request) { r.Peers = []string{a} }), wantErr: "balancing needs two or more peers (got 1)"},
		{name: "balance with one peer", in: with(func(r *Request) { r.Peer = a; r.Balance = "rtt" }), wantErr: "balancing needs two or more peers (got 0)"},
		{name: "peer and peers", in: with(func(r *Request) { r.Peer = a; r.Peers = []string{b, c} }), wantErr: "one peer or a list of peers, not both"},
		{name: "duplicate", in: with(func(r *Request) { r.Peers = []string{a, "/p2p/" + a} }), wantErr: "is listed twice"},
		{name: "bad peer", in: with(func(r *Request) { r.Peers = []string{a, "nope"} }), wantErr: `no peer is named "nope"`},
		{name: "extra addrs", in: with(func(r *Request) { r.Peers = []string{a, b}; r.Addrs = []string{"/ip4/127.0.0.1/tcp/1"} }), wantErr: "give each peer's address in the list itself"},
		{name: "invite", in: with(func(r *Request) { r.Peers = []string{a, b}; r.Invite = make([]byte, 16) }), wantErr: "an invite is for one peer"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := ParseForward(tt.in)
			if tt.wantErr != "" {
				checkReason(t, err, tt.wantErr)
				return
			}
			if err != nil {
				t.Fatalf("ParseForward(%+v): %v", tt.in, err)
			}
			var got []string
			for _, p := range s.Peers {
				got = append(got, p.ID.String())
			}
			if s.Kind != KindForward || s.Peer.ID != "" || !slices.Equal(got, tt.wantPeers) || s.Balance != tt.wantBal || s.Lazy != tt.in.Lazy {
				t.Errorf("ParseForward(%+v) = peers %v, balance %q, %+v; want peers %v, balance %q", tt.in, got, s.Balance, s, tt.wantPeers, tt.wantBal)
			}
			if len(s.Peers) > 1 && tt.in.Peers[1] == full && len(s.Peers[1].Addrs) != 1 {
				t.Errorf("the full address of %s lost its transport: %v", b, s.Peers[1].Addrs)
			}
			tt.in.Peers[0] = "changed"
			if s.Request.Peers[0] == "changed" {
				t.Error("the spec shares its Peers with the request")
			}
		})
	}
}
