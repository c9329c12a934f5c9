package spec

import (
	"errors"
	"strings"
	"testing"

	"github.com/libp2p/go-libp2p/core/protocol"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/p2ptun/p2ptun/internal/harness"
)

// checkUsageErr asserts that err is a one-line ErrInvalid.
func checkUsageErr(t *testing.T, err error) {
	t.Helper()
	if err == nil {
		t.Fatal("got nil error, want ErrInvalid")
	}
	if !errors.Is(err, ErrInvalid) {
		t.Errorf("error %q does not wrap ErrInvalid", err)
	}
	if strings.Contains(err.Error(), "\n") {
		t.Errorf("error %q spans more than one line", err)
	}
}

func TestParseProtocol(t *testing.T) {
	tests := []struct {
		name        string
		in          string
		allowCustom bool
		wantErr     bool
	}{
		{name: "x prefix", in: "/x/web"},
		{name: "x prefix with custom", in: "/x/web", allowCustom: true},
		{name: "x nested", in: "/x/web/1.0.0"},
		{name: "x alone", in: "/x/", wantErr: true},
		{name: "x alone with custom", in: "/x/", allowCustom: true, wantErr: true},
		{name: "no leading slash", in: "web", wantErr: true},
		{name: "no leading slash with custom", in: "web", allowCustom: true, wantErr: true},
		{name: "empty", in: "", wantErr: true},
		{name: "empty with custom", in: "", allowCustom: true, wantErr: true},
		{name: "reserved ipfs", in: "/ipfs/id/1.0.0", wantErr: true},
		{name: "reserved ipfs with custom", in: "/ipfs/id/1.0.0", allowCustom: true, wantErr: true},
		{name: "reserved libp2p with custom", in: "/libp2p/circuit/relay/0.2.0/hop", allowCustom: true, wantErr: true},
		{name: "reserved yamux with custom", in: "/yamux/1.0.0", allowCustom: true, wantErr: true},
		{name: "reserved noise with custom", in: "/noise", allowCustom: true, wantErr: true},
		{name: "reserved p2ptun invites with custom", in: "/p2ptun/invite/1.0.0", allowCustom: true, wantErr: true},
		{name: "reserved p2ptun dht with custom", in: "/p2ptun/kad/1.0.0", allowCustom: true, wantErr: true},
		{name: "p2ptun-like custom name", in: "/p2ptunnel/1.0.0", allowCustom: true},
		{name: "custom without flag", in: "/my/proto", wantErr: true},
		{name: "custom with flag", in: "/my/proto", allowCustom: true},
		{name: "space", in: "/x/my web", wantErr: true},
		{name: "space with custom", in: "/my proto", allowCustom: true, wantErr: true},
		{name: "tab", in: "/x/web\t", wantErr: true},
		{name: "newline", in: "/x/web\n", wantErr: true},
		{name: "carriage return", in: "/x/\rweb", wantErr: true},
		{name: "leading space", in: " /x/web", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseProtocol(tt.in, tt.allowCustom)
			if tt.wantErr {
				if got != "" {
					t.Errorf("ParseProtocol(%q, %v) = %q with an error, want empty", tt.in, tt.allowCustom, got)
				}
				checkUsageErr(t, err)
				return
			}
			if err != nil {
				t.Fatalf("ParseProtocol(%q, %v): %v", tt.in, tt.allowCustom, err)
			}
			if got != protocol.ID(tt.in) {
				t.Errorf("ParseProtocol(%q, %v) = %q, want %q", tt.in, tt.allowCustom, got, tt.in)
			}
		})
	}
}

type addrTest struct {
	name    string
	in      string
	want    string // the multiaddr's String(); empty means an error
	wantErr bool
}

func runAddrTests(t *testing.T, parse func(string) (ma.Multiaddr, error), tests []addrTest) {
	t.Helper()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := parse(tt.in)
			if tt.wantErr {
				if m != nil {
					t.Errorf("parse(%q) = %s with an error, want nil", tt.in, m)
				}
				checkUsageErr(t, err)
				return
			}
			if err != nil {
				t.Fatalf("parse(%q): %v", tt.in, err)
			}
			if got := m.String(); got != tt.want {
				t.Errorf("parse(%q) = %s, want %s", tt.in, got, tt.want)
			}
		})
	}
}

func TestParseAddr(t *testing.T) {
	runAddrTests(t, ParseAddr, []addrTest{
		{name: "multiaddr", in: "/ip4/127.0.0.1/tcp/8080", want: "/ip4/127.0.0.1/tcp/8080"},
		{name: "multiaddr ip6", in: "/ip6/::1/tcp/8080", want: "/ip6/::1/tcp/8080"},
		{name: "multiaddr dns", in: "/dns4/example.com/tcp/443", want: "/dns4/example.com/tcp/443"},
		{name: "multiaddr unix", in: "/unix/tmp/x.sock", want: "/unix/tmp/x.sock"},
		{name: "ip4 host port", in: "127.0.0.1:8080", want: "/ip4/127.0.0.1/tcp/8080"},
		{name: "ip6 host port", in: "[::1]:9", want: "/ip6/::1/tcp/9"},
		{name: "ip4-mapped ip6", in: "[::ffff:10.0.0.1]:22", want: "/ip4/10.0.0.1/tcp/22"},
		{name: "name host port", in: "localhost:80", want: "/dns/localhost/tcp/80"},
		{name: "port zero", in: "127.0.0.1:0", want: "/ip4/127.0.0.1/tcp/0"},
		{name: "port max", in: "127.0.0.1:65535", want: "/ip4/127.0.0.1/tcp/65535"},
		{name: "port too big", in: "127.0.0.1:65536", wantErr: true},
		{name: "port not a number", in: "127.0.0.1:http", wantErr: true},
		{name: "port negative", in: "127.0.0.1:-1", wantErr: true},
		{name: "port zero padded", in: "127.0.0.1:00", wantErr: true},
		{name: "port empty", in: "127.0.0.1:", wantErr: true},
		{name: "missing port", in: "127.0.0.1", wantErr: true},
		{name: "missing port name", in: "localhost", wantErr: true},
		{name: "missing host", in: ":80", wantErr: true},
		{name: "ip6 without brackets", in: "::1:80", wantErr: true},
		{name: "empty", in: "", wantErr: true},
		{name: "garbage", in: "not an address", wantErr: true},
		{name: "garbage multiaddr", in: "/ip4/nope/tcp/80", wantErr: true},
		{name: "multiaddr bad port", in: "/ip4/127.0.0.1/tcp/99999", wantErr: true},
		{name: "multiaddr unknown protocol", in: "/foo/bar", wantErr: true},
		{name: "multiaddr missing value", in: "/ip4/127.0.0.1/tcp", wantErr: true},
		{name: "ip6 with zone", in: "[fe80::1%eth0]:80", want: "/ip6zone/eth0/ip6/fe80::1/tcp/80"},
		{name: "host smuggles multiaddr parts", in: "evil.com/tcp/22/dns/x:80", wantErr: true},
		{name: "host smuggles ip4", in: "x/tcp/1/ip4/1.2.3.4:80", wantErr: true},
		{name: "host with newline", in: "a\nb:80", wantErr: true},
		{name: "multiaddr with newline", in: "/ip4/1.2.3.4\n/tcp/1", wantErr: true},
	})
}

func TestParseTarget(t *testing.T) {
	runAddrTests(t, ParseTarget, []addrTest{
		{name: "tcp multiaddr", in: "/ip4/127.0.0.1/tcp/8080", want: "/ip4/127.0.0.1/tcp/8080"},
		{name: "tcp host port", in: "127.0.0.1:8080", want: "/ip4/127.0.0.1/tcp/8080"},
		{name: "ip6", in: "[::1]:22", want: "/ip6/::1/tcp/22"},
		{name: "dns name", in: "localhost:80", want: "/dns/localhost/tcp/80"},
		{name: "dns4 multiaddr", in: "/dns4/example.com/tcp/80", want: "/dns4/example.com/tcp/80"},
		{name: "unix socket", in: "/unix/tmp/x.sock", want: "/unix/tmp/x.sock"},
		{name: "udp", in: "/ip4/1.2.3.4/udp/5", want: "/ip4/1.2.3.4/udp/5"},
		{name: "udp dns", in: "/dns/localhost/udp/53", want: "/dns/localhost/udp/53"},
		{name: "quic", in: "/ip4/1.2.3.4/udp/5/quic-v1", wantErr: true},
		{name: "ip only", in: "/ip4/1.2.3.4", wantErr: true},
		{name: "p2p", in: "/p2p/" + harness.NewPeer(t).String(), wantErr: true},
		{name: "bad port", in: "localhost:99999", wantErr: true},
		{name: "garbage", in: "garbage", wantErr: true},
	})
}

func TestParseListenAddr(t *testing.T) {
	runAddrTests(t, ParseListenAddr, []addrTest{
		{name: "ip4 multiaddr", in: "/ip4/127.0.0.1/tcp/9000", want: "/ip4/127.0.0.1/tcp/9000"},
		{name: "ip4 host port", in: "127.0.0.1:9000", want: "/ip4/127.0.0.1/tcp/9000"},
		{name: "ip6 host port", in: "[::1]:9000", want: "/ip6/::1/tcp/9000"},
		{name: "port zero", in: "127.0.0.1:0", want: "/ip4/127.0.0.1/tcp/0"},
		{name: "port zero multiaddr", in: "/ip4/0.0.0.0/tcp/0", want: "/ip4/0.0.0.0/tcp/0"},
		{name: "localhost", in: "localhost:9000", want: "/ip4/127.0.0.1/tcp/9000"},
		{name: "localhost upper case", in: "LOCALHOST:9000", want: "/ip4/127.0.0.1/tcp/9000"},
		{name: "bare port", in: "9000", want: "/ip4/127.0.0.1/tcp/9000"},
		{name: "bare port zero", in: "0", want: "/ip4/127.0.0.1/tcp/0"},
		{name: "colon port", in: ":9000", want: "/ip4/127.0.0.1/tcp/9000"},
		{name: "bare port too big", in: "65536", wantErr: true},
		{name: "colon without port", in: ":", wantErr: true},
		{name: "other name", in: "example.com:9000", wantErr: true},
		{name: "all interfaces stays explicit", in: "0.0.0.0:9000", want: "/ip4/0.0.0.0/tcp/9000"},
		{name: "dns multiaddr", in: "/dns/localhost/tcp/9000", wantErr: true},
		{name: "dns4 multiaddr", in: "/dns4/localhost/tcp/9000", wantErr: true},
		{name: "dns6 multiaddr", in: "/dns6/localhost/tcp/9000", wantErr: true},
		{name: "udp", in: "/ip4/127.0.0.1/udp/9000", want: "/ip4/127.0.0.1/udp/9000"},
		{name: "udp port zero", in: "/ip6/::1/udp/0", want: "/ip6/::1/udp/0"},
		{name: "udp on a name", in: "/dns/localhost/udp/9000", wantErr: true},
		{name: "quic", in: "/ip4/127.0.0.1/udp/9000/quic-v1", wantErr: true},
		{name: "unix", in: "/unix/tmp/x.sock", wantErr: true},
		{name: "ip only", in: "/ip4/127.0.0.1", wantErr: true},
		{name: "missing port", in: "127.0.0.1", wantErr: true},
		{name: "garbage", in: "garbage", wantErr: true},
	})
}

func TestParsePeer(t *testing.T) {
	id := harness.NewPeer(t)
	tests := []struct {
		name    string
		in      string
		wantErr bool
	}{
		{name: "bare ID", in: id.String()},
		{name: "p2p prefix", in: "/p2p/" + id.String(), wantErr: true},
		{name: "empty", in: "", wantErr: true},
		{name: "garbage", in: "garbage", wantErr: true},
		{name: "truncated", in: id.String()[:len(id.String())-3], wantErr: true},
		{name: "trailing space", in: id.String() + " ", wantErr: true},
		// base58 of a multihash of an unknown code: peer.Decode takes
		// it, a /p2p/ address would not (a fuzz find).
		{name: "unknown multihash", in: "Qmm1111", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParsePeer(tt.in)
			if tt.wantErr {
				if got != "" {
					t.Errorf("ParsePeer(%q) = %s with an error, want empty", tt.in, got)
				}
				checkUsageErr(t, err)
				return
			}
			if err != nil {
				t.Fatalf("ParsePeer(%q): %v", tt.in, err)
			}
			if got != id {
				t.Errorf("ParsePeer(%q) = %s, want %s", tt.in, got, id)
			}
		})
	}
}

func TestParsePeerAddr(t *testing.T) {
	id := harness.NewPeer(t)
	tests := []struct {
		name      string
		in        string
		wantAddrs []string
		wantErr   bool
	}{
		{name: "bare ID", in: id.String()},
		{name: "p2p", in: "/p2p/" + id.String()},
		{name: "ipfs", in: "/ipfs/" + id.String()},
		{name: "tcp with p2p", in: "/ip4/127.0.0.1/tcp/4141/p2p/" + id.String(), wantAddrs: []string{"/ip4/127.0.0.1/tcp/4141"}},
		{name: "quic with p2p", in: "/ip6/::1/udp/4141/quic-v1/p2p/" + id.String(), wantAddrs: []string{"/ip6/::1/udp/4141/quic-v1"}},
		{name: "garbage", in: "garbage", wantErr: true},
		{name: "empty", in: "", wantErr: true},
		{name: "garbage multiaddr", in: "/p2p/garbage", wantErr: true},
		{name: "multiaddr without p2p", in: "/ip4/127.0.0.1/tcp/4141", wantErr: true},
		{name: "p2p not last", in: "/p2p/" + id.String() + "/ip4/127.0.0.1/tcp/4141", wantErr: true},
		{name: "ID with host port", in: "127.0.0.1:4141", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParsePeerAddr(tt.in)
			if tt.wantErr {
				if got.ID != "" || len(got.Addrs) != 0 {
					t.Errorf("ParsePeerAddr(%q) = %v with an error, want empty", tt.in, got)
				}
				checkUsageErr(t, err)
				return
			}
			if err != nil {
				t.Fatalf("ParsePeerAddr(%q): %v", tt.in, err)
			}
			if got.ID != id {
				t.Errorf("ParsePeerAddr(%q).ID = %s, want %s", tt.in, got.ID, id)
			}
			var addrs []string
			for _, a := range got.Addrs {
				addrs = append(addrs, a.String())
			}
			if strings.Join(addrs, " ") != strings.Join(tt.wantAddrs, " ") || len(addrs) != len(tt.wantAddrs) {
				t.Errorf("ParsePeerAddr(%q).Addrs = %q, want %q", tt.in, addrs, tt.wantAddrs)
			}
		})
	}
}

func FuzzParseAddr(f *testing.F) {
	for _, s := range []string{
		"/ip4/127.0.0.1/tcp/8080",
		"/ip6/::1/tcp/9",
		"/dns/localhost/tcp/80",
		"/unix/tmp/x.sock",
		"/ip4/1.2.3.4/udp/5/quic-v1",
		"127.0.0.1:8080",
		"[::1]:9",
		"[::ffff:1.2.3.4]:80",
		"localhost:80",
		"127.0.0.1:99999",
		"127.0.0.1",
		":80",
		"garbage",
		"",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		m, err := ParseAddr(s)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("ParseAddr(%q) error %q does not wrap ErrInvalid", s, err)
			}
			return
		}
		if m == nil {
			t.Fatalf("ParseAddr(%q) returned nil without an error", s)
		}
		str := m.String()
		m2, err := ParseAddr(str)
		if err != nil {
			t.Fatalf("ParseAddr(%q) = %s, which does not parse again: %v", s, str, err)
		}
		if m2.String() != str {
			t.Fatalf("ParseAddr(%q) = %s, reparsed as %s", s, str, m2)
		}
		// The other address parsers build on ParseAddr: they must not panic
		// and may only narrow what it accepts (a forward's address after
		// its shorthands are spelled out).
		if m, err := ParseTarget(s); err == nil && m.String() != str {
			t.Fatalf("ParseTarget(%q) = %s, ParseAddr gave %s", s, m, str)
		}
		if m, err := ParseListenAddr(s); err == nil && listenShorthand(s) == s && m.String() != str {
			t.Fatalf("ParseListenAddr(%q) = %s, ParseAddr gave %s", s, m, str)
		}
	})
}

func FuzzParsePeerAddr(f *testing.F) {
	id := harness.NewPeer(f).String()
	for _, s := range []string{
		id,
		"/p2p/" + id,
		"/ipfs/" + id,
		"/ip4/127.0.0.1/tcp/4141/p2p/" + id,
		"/ip6/::1/udp/4141/quic-v1/p2p/" + id,
		"/p2p/" + id + "/p2p-circuit/p2p/" + id,
		"/ip4/127.0.0.1/tcp/4141",
		"/p2p/garbage",
		"garbage",
		"",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ai, err := ParsePeerAddr(s)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("ParsePeerAddr(%q) error %q does not wrap ErrInvalid", s, err)
			}
			return
		}
		if ai.ID == "" {
			t.Fatalf("ParsePeerAddr(%q) returned an empty ID without an error", s)
		}
		// The bare ID and every address with /p2p/ID appended round-trip.
		back, err := ParsePeerAddr(ai.ID.String())
		if err != nil || back.ID != ai.ID || len(back.Addrs) != 0 {
			t.Fatalf("ParsePeerAddr(%q).ID = %s, reparsed as %v, %v", s, ai.ID, back, err)
		}
		p2p, err := ma.NewComponent("p2p", ai.ID.String())
		if err != nil {
			t.Fatalf("building /p2p/%s: %v", ai.ID, err)
		}
		for _, a := range ai.Addrs {
			full := a.Encapsulate(p2p.Multiaddr()).String()
			back, err := ParsePeerAddr(full)
			if err != nil {
				t.Fatalf("ParsePeerAddr(%q) gave address %s; %s does not parse: %v", s, a, full, err)
			}
			if back.ID != ai.ID || len(back.Addrs) != 1 || back.Addrs[0].String() != a.String() {
				t.Fatalf("ParsePeerAddr(%q) gave %s %s; %s reparsed as %v", s, ai.ID, a, full, back)
			}
		}
	})
}

func TestBoundListen(t *testing.T) {
	for _, tt := range []struct{ name, requested, bound, want string }{
		{"tcp port 0", "/ip4/127.0.0.1/tcp/0", "/ip4/127.0.0.1/tcp/4100", "/ip4/127.0.0.1/tcp/4100"},
		{"host port 0", "127.0.0.1:0", "/ip4/127.0.0.1/tcp/4100", "127.0.0.1:4100"},
		{"udp port 0", "/ip4/127.0.0.1/udp/0", "/ip4/127.0.0.1/udp/5353", "/ip4/127.0.0.1/udp/5353"},
		{"udp port given", "/ip4/127.0.0.1/udp/53", "/ip4/127.0.0.1/udp/53", "/ip4/127.0.0.1/udp/53"},
		{"tcp port given", "/ip4/127.0.0.1/tcp/80", "/ip4/127.0.0.1/tcp/80", "/ip4/127.0.0.1/tcp/80"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := BoundListen(tt.requested, tt.bound); got != tt.want {
				t.Errorf("BoundListen(%q, %q) = %q, want %q", tt.requested, tt.bound, got, tt.want)
			}
		})
	}
}
