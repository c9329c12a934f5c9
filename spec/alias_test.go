package spec

import (
	"errors"
	"strings"
	"testing"

	"github.com/p2ptun/p2ptun/internal/harness"
)

func TestCheckName(t *testing.T) {
	id := harness.NewPeerID(t)
	tests := []struct {
		name, in string
		wantErr  bool
	}{
		{name: "word", in: "laptop"},
		{name: "with digits and punctuation", in: "db-1_eu"},
		{name: "dot", in: "db.prod", wantErr: true},
		{name: "upper case", in: "NAS"},
		{name: "longest", in: "a" + strings.Repeat("b", maxNameLen-1)},
		{name: "too long", in: "a" + strings.Repeat("b", maxNameLen), wantErr: true},
		{name: "empty", in: "", wantErr: true},
		{name: "starts with a digit", in: "1laptop", wantErr: true},
		{name: "multiaddr", in: "/p2p/" + id, wantErr: true},
		{name: "peer ID", in: id, wantErr: true},
		{name: "peer ID prefix", in: "12D3KooWlaptop", wantErr: true},
		{name: "CIDv0-like", in: "QmLaptop", wantErr: true},
		{name: "space", in: "my laptop", wantErr: true},
		{name: "colon", in: "laptop:22", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := CheckName(tt.in)
			if tt.wantErr {
				checkUsageErr(t, err)
				if err == nil {
					t.Fatalf("CheckName(%q) = nil, want an error", tt.in)
				}
				return
			}
			if err != nil {
				t.Fatalf("CheckName(%q): %v", tt.in, err)
			}
		})
	}
}

func TestParseAliases(t *testing.T) {
	id := harness.NewPeerID(t)
	if _, err := ParseAliases(map[string]string{"laptop": id, "nas": "/ip4/127.0.0.1/tcp/4001/p2p/" + id}); err != nil {
		t.Fatal(err)
	}
	_, err := ParseAliases(map[string]string{"laptop": "garbage"})
	checkReason(t, err, "peer name laptop: ")
	_, err = ParseAliases(map[string]string{id: id})
	checkReason(t, err, "looks like a peer ID")
}

// TestAliasesEveryPeer: a name is accepted wherever a PEER is written, and
// resolves to the peer (and addresses) it names.
func TestAliasesEveryPeer(t *testing.T) {
	a, b := harness.NewPeerID(t), harness.NewPeerID(t)
	al := Aliases{"laptop": a, "nas": "/ip4/127.0.0.1/tcp/4001/p2p/" + b}
	tests := []struct {
		name  string
		parse func() (Spec, error)
		check func(Spec) bool
	}{
		{name: "forward peer", parse: func() (Spec, error) {
			return ParseForward(Request{Protocol: "/x/web", ListenAddress: "9000", Peer: "nas", Aliases: al})
		}, check: func(s Spec) bool {
			// Names keeps only the names the spec used, to parse it again.
			return s.Peer.ID.String() == b && len(s.Peer.Addrs) == 1 && len(s.Names) == 1 && s.Names["nas"] == al["nas"]
		}},
		{name: "forward peers", parse: func() (Spec, error) {
			return ParseForward(Request{Protocol: "/x/web", ListenAddress: "9000", Peers: []string{"laptop", "nas"}, Aliases: al})
		}, check: func(s Spec) bool {
			return len(s.Peers) == 2 && s.Peers[0].ID.String() == a && s.Peers[1].ID.String() == b
		}},
		{name: "pipe", parse: func() (Spec, error) {
			return ParsePipe(Request{Protocol: "/x/ssh", Peer: "laptop", Aliases: al})
		}, check: func(s Spec) bool { return s.Peer.ID.String() == a }},
		{name: "allow", parse: func() (Spec, error) {
			return ParseListen(Request{Protocol: "/x/web", Target: "127.0.0.1:1", Allow: []string{"laptop", "nas", a}, Aliases: al})
		}, check: func(s Spec) bool { return len(s.Allow) == 2 && s.Allow[0].String() == a && s.Allow[1].String() == b }},
		{name: "peer ID beside names", parse: func() (Spec, error) {
			return ParsePipe(Request{Protocol: "/x/ssh", Peer: b, Aliases: al})
		}, check: func(s Spec) bool { return s.Peer.ID.String() == b }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := tt.parse()
			if err != nil {
				t.Fatal(err)
			}
			if !tt.check(s) {
				t.Errorf("parsed %+v", s)
			}
			if s.Request.Aliases != nil {
				t.Error("the spec keeps the aliases it was parsed with")
			}
		})
	}
}

func TestUnknownName(t *testing.T) {
	al := Aliases{"laptop": harness.NewPeerID(t)}
	for _, parse := range []func() error{
		func() error { _, err := al.Peer("desktop"); return err },
		func() error { _, err := al.PeerAddr("desktop"); return err },
		func() error {
			_, err := ParseForward(Request{Protocol: "/x/web", ListenAddress: "9000", Peer: "desktop", Aliases: al})
			return err
		},
	} {
		err := parse()
		checkReason(t, err, "p2ptun peer add desktop PEER-ADDR")
		if !errors.Is(err, ErrUnknownName) {
			t.Errorf("%v is not ErrUnknownName", err)
		}
	}
	// A malformed peer ID is not a name: the peer ID's own error.
	_, err := al.Peer("12D3KooWnot")
	checkReason(t, err, "is not a peer ID")
	if errors.Is(err, ErrUnknownName) {
		t.Errorf("%v is ErrUnknownName", err)
	}
}

func TestNameOf(t *testing.T) {
	a, b := harness.NewPeer(t), harness.NewPeer(t)
	al := Aliases{"laptop": a.String(), "work": "/p2p/" + a.String(), "nas": "/ip4/127.0.0.1/tcp/1/p2p/" + b.String()}
	if got := al.NameOf(a); got != "laptop" {
		t.Errorf("NameOf(a) = %q, want laptop (the first of its names)", got)
	}
	if got := al.NameOfString(b.String()); got != "nas" {
		t.Errorf("NameOfString(b) = %q, want nas", got)
	}
	if got := al.NameOf(harness.NewPeer(t)); got != "" {
		t.Errorf("NameOf(unnamed) = %q, want none", got)
	}
	if got := Aliases(nil).NameOf(a); got != "" {
		t.Errorf("nil NameOf = %q", got)
	}
}

// TestListenAddrErrorQuotesInput: an error names the address as the user
// typed it, not its parsed form.
func TestListenAddrErrorQuotesInput(t *testing.T) {
	_, err := ParseListenAddr("localhost:9000/x")
	checkUsageErr(t, err)
	_, err = ParseListenAddr("/ip4/127.0.0.1/udp/9000/quic-v1")
	checkReason(t, err, `"/ip4/127.0.0.1/udp/9000/quic-v1"`)
	_, err = ParseListenAddr("example.com:9000")
	checkReason(t, err, `"example.com:9000"`)
}
