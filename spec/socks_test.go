package spec

import (
	"slices"
	"testing"

	"github.com/p2ptun/p2ptun/internal/harness"
)

func TestParseEgress(t *testing.T) {
	a := harness.NewPeerID(t)
	permit := []string{"10.0.0.0/8:22", "db.internal:5432"}
	for _, tt := range []struct {
		name    string
		in      Request
		wantErr string
	}{
		{name: "egress", in: Request{Protocol: "/x/net", Egress: true, Permit: permit, Allow: []string{a}}},
		{name: "with target", in: Request{Protocol: "/x/net", Target: "127.0.0.1:1", Egress: true, Permit: permit, Allow: []string{a}}, wantErr: "drop the target"},
		{name: "no permit", in: Request{Protocol: "/x/net", Egress: true, Allow: []string{a}}, wantErr: "permits nothing by default: pass --permit"},
		{name: "bad permit", in: Request{Protocol: "/x/net", Egress: true, Permit: []string{"*:22"}, Allow: []string{a}}, wantErr: "0.0.0.0/0:22"},
		{name: "permit without egress", in: Request{Protocol: "/x/net", Target: "127.0.0.1:1", Permit: permit, Allow: []string{a}}, wantErr: "only to an --egress listener"},
		{name: "report peer id", in: Request{Protocol: "/x/net", Egress: true, ReportPeerID: true, Permit: permit, Allow: []string{a}}, wantErr: "--report-peer-id does not apply"},
		{name: "no allowlist", in: Request{Protocol: "/x/net", Egress: true, Permit: permit}, wantErr: "listener allows no peer"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s, err := ParseListen(tt.in)
			if tt.wantErr != "" {
				checkReason(t, err, tt.wantErr)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !s.Egress || s.Target != nil || !slices.Equal(s.Permit.Strings(), permit) {
				t.Fatalf("ParseListen(%+v) = %+v", tt.in, s)
			}
		})
	}
}

func TestParseSocksForward(t *testing.T) {
	id := harness.NewPeerID(t)
	for _, tt := range []struct {
		name    string
		in      Request
		wantErr string
	}{
		{name: "loopback", in: Request{Protocol: "/x/net", ListenAddress: "127.0.0.1:1080", Peer: id, Socks: true}},
		{name: "loopback v6", in: Request{Protocol: "/x/net", ListenAddress: "[::1]:0", Peer: id, Socks: true}},
		{name: "public with gateway", in: Request{Protocol: "/x/net", ListenAddress: "0.0.0.0:1080", Peer: id, Socks: true, Gateway: true}},
		{name: "any address", in: Request{Protocol: "/x/net", ListenAddress: "0.0.0.0:1080", Peer: id, Socks: true}, wantErr: "pass --gateway to mean it"},
		{name: "lan address", in: Request{Protocol: "/x/net", ListenAddress: "/ip4/192.168.1.2/tcp/1080", Peer: id, Socks: true}, wantErr: "bind a loopback address"},
		{name: "gateway without socks", in: Request{Protocol: "/x/net", ListenAddress: "127.0.0.1:1080", Peer: id, Gateway: true}, wantErr: "--gateway applies only to a --socks forward"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s, err := ParseForward(tt.in)
			if tt.wantErr != "" {
				checkReason(t, err, tt.wantErr)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !s.Socks {
				t.Fatalf("ParseForward(%+v) = %+v", tt.in, s)
			}
		})
	}
}
