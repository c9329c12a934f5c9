package spec

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/p2ptun/p2ptun/internal/harness"
)

func TestParseListen(t *testing.T) {
	a, b := harness.NewPeerID(t), harness.NewPeerID(t)
	tests := []struct {
		name      string
		in        Request
		wantErr   string // a substring of the reason; "" for success
		wantAllow int
	}{
		{name: "allow", in: Request{Protocol: "/x/web", Target: "127.0.0.1:8080", Allow: []string{a, b}}, wantAllow: 2},
		{name: "allow deduplicated", in: Request{Protocol: "/x/web", Target: "/ip4/127.0.0.1/tcp/8080", Allow: []string{a, a, b}}, wantAllow: 2},
		{name: "allow all", in: Request{Protocol: "/x/web", Target: "/unix/tmp/s.sock", AllowAll: true}},
		{name: "invite only", in: Request{Protocol: "/x/web", Target: "localhost:80", InviteOnly: true}},
		{name: "custom protocol", in: Request{Protocol: "/web", Target: "127.0.0.1:1", AllowAll: true, AllowCustomProtocol: true}},
		{name: "bad protocol", in: Request{Protocol: "/web", Target: "127.0.0.1:1", AllowAll: true}, wantErr: "must start with /x/"},
		{name: "bad target", in: Request{Protocol: "/x/web", Target: "localhost", AllowAll: true}, wantErr: "neither a multiaddr nor host:port"},
		{name: "udp target", in: Request{Protocol: "/x/dns", Target: "/ip4/127.0.0.1/udp/53", AllowAll: true}},
		{name: "quic target", in: Request{Protocol: "/x/web", Target: "/ip4/127.0.0.1/udp/53/quic-v1", AllowAll: true}, wantErr: "/ip4/HOST/tcp/PORT"},
		{name: "udp target reporting the peer ID", in: Request{Protocol: "/x/dns", Target: "/ip4/127.0.0.1/udp/53", AllowAll: true, ReportPeerID: true}, wantErr: "drop --report-peer-id"},
		{name: "bad allow", in: Request{Protocol: "/x/web", Target: "127.0.0.1:1", Allow: []string{"not-a-peer"}}, wantErr: `no peer is named "not-a-peer"`},
		{name: "no allowlist", in: Request{Protocol: "/x/web", Target: "127.0.0.1:1"}, wantErr: "listener allows no peer: pass --allow PEER (repeatable), --allow-all, or --invite-only"},
		{name: "invite only and allow all", in: Request{Protocol: "/x/web", Target: "127.0.0.1:1", AllowAll: true, InviteOnly: true}, wantErr: "contradict each other"},
		{name: "egress", in: Request{Protocol: "/x/net", Egress: true, Permit: []string{"10.0.0.0/8:22", "db.internal:5432"}, Allow: []string{a}}, wantAllow: 1},
		{name: "egress with target", in: Request{Protocol: "/x/net", Target: "127.0.0.1:1", Egress: true, Permit: []string{"10.0.0.0/8:22"}, Allow: []string{a}}, wantErr: "drop the target"},
		{name: "egress without permit", in: Request{Protocol: "/x/net", Egress: true, Allow: []string{a}}, wantErr: "permits nothing by default: pass --permit"},
		{name: "egress permitting any host", in: Request{Protocol: "/x/net", Egress: true, Permit: []string{"*:22"}, Allow: []string{a}}, wantErr: "0.0.0.0/0:22"},
		{name: "permit without egress", in: Request{Protocol: "/x/net", Target: "127.0.0.1:1", Permit: []string{"10.0.0.0/8:22"}, Allow: []string{a}}, wantErr: "only to an --egress listener"},
		{name: "egress reporting the peer ID", in: Request{Protocol: "/x/net", Egress: true, ReportPeerID: true, Permit: []string{"10.0.0.0/8:22"}, Allow: []string{a}}, wantErr: "--report-peer-id does not apply"},
		{name: "egress without allowlist", in: Request{Protocol: "/x/net", Egress: true, Permit: []string{"10.0.0.0/8:22"}}, wantErr: "listener allows no peer"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := ParseListen(tt.in)
			if tt.wantErr != "" {
				checkReason(t, err, tt.wantErr)
				return
			}
			if err != nil {
				t.Fatalf("ParseListen(%+v): %v", tt.in, err)
			}
			if s.Kind != KindListen || string(s.Protocol) != tt.in.Protocol || (s.Target == nil) != tt.in.Egress || len(s.Allow) != tt.wantAllow {
				t.Errorf("ParseListen(%+v) = %+v", tt.in, s)
			}
			if s.AllowAll != tt.in.AllowAll || s.InviteOnly != tt.in.InviteOnly || s.Egress != tt.in.Egress || !slices.Equal(s.Permit.Strings(), tt.in.Permit) {
				t.Errorf("ParseListen(%+v) options = %+v", tt.in, s)
			}
		})
	}
}

func TestParseForward(t *testing.T) {
	id := harness.NewPeerID(t)
	other := harness.NewPeerID(t)
	secret := strings.Repeat("s", 16)
	tests := []struct {
		name      string
		in        Request
		wantErr   string
		wantAddrs int
	}{
		{name: "bare ID", in: Request{Protocol: "/x/web", ListenAddress: "127.0.0.1:0", Peer: id}},
		{name: "full multiaddr", in: Request{Protocol: "/x/web", ListenAddress: "/ip4/127.0.0.1/tcp/0", Peer: "/ip4/127.0.0.1/tcp/4001/p2p/" + id}, wantAddrs: 1},
		{name: "with addrs", in: Request{Protocol: "/x/web", ListenAddress: "[::1]:9000", Peer: "/p2p/" + id, Addrs: []string{"/ip4/127.0.0.1/tcp/4001", "/ip4/127.0.0.1/udp/4001/quic-v1/p2p/" + id}}, wantAddrs: 2},
		{name: "invite", in: Request{Protocol: "/x/web", ListenAddress: "127.0.0.1:0", Peer: id, Invite: []byte(secret)}},
		{name: "udp", in: Request{Protocol: "/x/dns", ListenAddress: "/ip4/127.0.0.1/udp/0", Peer: id}},
		{name: "bad protocol", in: Request{Protocol: "/ipfs/ping/1.0.0", ListenAddress: "127.0.0.1:0", Peer: id}, wantErr: "reserved by libp2p"},
		{name: "listen on a name", in: Request{Protocol: "/x/web", ListenAddress: "/dns/localhost/tcp/1", Peer: id}, wantErr: "must use an IP (or localhost), not a name"},
		{name: "peer without p2p", in: Request{Protocol: "/x/web", ListenAddress: "127.0.0.1:0", Peer: "/ip4/127.0.0.1/tcp/1"}, wantErr: "does not end in /p2p/PEER-ID"},
		{name: "addr of another peer", in: Request{Protocol: "/x/web", ListenAddress: "127.0.0.1:0", Peer: id, Addrs: []string{"/ip4/127.0.0.1/tcp/1/p2p/" + other}}, wantErr: "is for peer"},
		{name: "addr without transport", in: Request{Protocol: "/x/web", ListenAddress: "127.0.0.1:0", Peer: id, Addrs: []string{"/p2p/" + id}}, wantErr: "has no transport"},
		{name: "short invite", in: Request{Protocol: "/x/web", ListenAddress: "127.0.0.1:0", Peer: id, Invite: []byte("short")}, wantErr: "invite secret is 16 to 64 bytes"},
		{name: "lazy invite", in: Request{Protocol: "/x/web", ListenAddress: "127.0.0.1:0", Peer: id, Invite: []byte(secret), Lazy: true}, wantErr: "cannot be --lazy"},
		{name: "socks on loopback", in: Request{Protocol: "/x/net", ListenAddress: "127.0.0.1:1080", Peer: id, Socks: true}},
		{name: "socks on ipv6 loopback", in: Request{Protocol: "/x/net", ListenAddress: "[::1]:0", Peer: id, Socks: true}},
		{name: "socks gateway", in: Request{Protocol: "/x/net", ListenAddress: "0.0.0.0:1080", Peer: id, Socks: true, Gateway: true}},
		{name: "socks on any address", in: Request{Protocol: "/x/net", ListenAddress: "0.0.0.0:1080", Peer: id, Socks: true}, wantErr: "pass --gateway to mean it"},
		{name: "socks on a LAN address", in: Request{Protocol: "/x/net", ListenAddress: "/ip4/192.168.1.2/tcp/1080", Peer: id, Socks: true}, wantErr: "bind a loopback address"},
		{name: "gateway without socks", in: Request{Protocol: "/x/net", ListenAddress: "127.0.0.1:1080", Peer: id, Gateway: true}, wantErr: "--gateway applies only to a --socks forward"},
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
			if s.Kind != KindForward || s.Listen == nil || s.Peer.ID.String() != id || len(s.Peer.Addrs) != tt.wantAddrs {
				t.Errorf("ParseForward(%+v) = %+v", tt.in, s)
			}
			if string(s.Invite) != string(tt.in.Invite) || s.Socks != tt.in.Socks {
				t.Errorf("ParseForward(%+v).Invite = %q", tt.in, s.Invite)
			}
		})
	}
}

func TestParsePipe(t *testing.T) {
	id := harness.NewPeerID(t)
	s, err := ParsePipe(Request{Protocol: "/x/ssh", Peer: id, Addrs: []string{"/ip4/127.0.0.1/tcp/1/p2p-circuit"}, AllowLimited: true})
	if err != nil {
		t.Fatal(err)
	}
	if s.Kind != KindPipe || s.Peer.ID.String() != id || !s.AllowLimited || !s.ViaRelay() {
		t.Errorf("ParsePipe = %+v, want a relayed pipe to %s", s, id)
	}
	_, err = ParsePipe(Request{Protocol: "/x/ssh", Peer: "garbage"})
	checkReason(t, err, `no peer is named "garbage"`)
}

// TestSpecOwnsItsSlices: a Spec shares no slice with the request it was
// parsed from, so a caller reusing its request cannot change a running
// tunnel's saved form.
func TestSpecOwnsItsSlices(t *testing.T) {
	r := Request{Protocol: "/x/web", Target: "127.0.0.1:1", Allow: []string{harness.NewPeerID(t)}}
	s, err := ParseListen(r)
	if err != nil {
		t.Fatal(err)
	}
	r.Allow[0] = "changed"
	if s.Request.Allow[0] == "changed" {
		t.Error("Spec.Request.Allow aliases the caller's slice")
	}
}

// checkReason asserts that err is a one-line ErrInvalid whose Reason, and
// so whose text after "invalid argument: ", contains want.
func checkReason(t *testing.T, err error, want string) {
	t.Helper()
	checkUsageErr(t, err)
	if err == nil {
		return
	}
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("error %q is not a *spec.Error", err)
	}
	if !strings.Contains(e.Reason, want) {
		t.Errorf("reason %q, want it to contain %q", e.Reason, want)
	}
	if err.Error() != "invalid argument: "+e.Reason || Reason(err) != e.Reason {
		t.Errorf("error %q, reason %q: the text is not \"invalid argument: \" then the reason", err, e.Reason)
	}
}

func FuzzParse(f *testing.F) {
	id := harness.NewPeerID(f)
	for _, s := range [][2]string{
		{"/x/web", "127.0.0.1:8080"},
		{"/x/web", "/ip4/127.0.0.1/tcp/0"},
		{"/web", "/unix/tmp/s"},
		{"/x/", "/p2p/" + id},
		{"/ipfs/id/1.0.0", id},
		{"/x/a b", "[::1]:1"},
		{"", ""},
	} {
		f.Add(s[0], s[1], id, true)
		f.Add(s[0], s[1], "/ip4/127.0.0.1/tcp/1/p2p/"+id, false)
	}
	f.Fuzz(func(t *testing.T, proto, addr, peerAddr string, custom bool) {
		r := Request{Protocol: proto, Target: addr, ListenAddress: addr, Peer: peerAddr, Allow: []string{peerAddr}, AllowCustomProtocol: custom}
		for kind, parse := range map[Kind]func(Request) (Spec, error){KindListen: ParseListen, KindForward: ParseForward, KindPipe: ParsePipe} {
			s, err := parse(r)
			if err != nil {
				if !errors.Is(err, ErrInvalid) || strings.Contains(err.Error(), "\n") {
					t.Fatalf("%s %+v: error %q is not a one-line ErrInvalid", kind, r, err)
				}
				continue
			}
			if s.Kind != kind || s.Protocol == "" {
				t.Fatalf("%s %+v = %+v", kind, r, s)
			}
			// A valid spec's typed values parse again to themselves.
			if _, err := ParseProtocol(string(s.Protocol), custom); err != nil {
				t.Fatalf("%s %+v: protocol %s does not parse again: %v", kind, r, s.Protocol, err)
			}
			if kind == KindListen {
				if back, err := ParseTarget(s.Target.String()); err != nil || back.String() != s.Target.String() {
					t.Fatalf("target %s reparsed as %v, %v", s.Target, back, err)
				}
			}
			if kind == KindForward {
				if back, err := ParseListenAddr(s.Listen.String()); err != nil || back.String() != s.Listen.String() {
					t.Fatalf("listen address %s reparsed as %v, %v", s.Listen, back, err)
				}
			}
		}
	})
}
