package daemon

import (
	"errors"
	"strings"
	"testing"

	"github.com/p2ptun/p2ptun/node"
)

// TestSwarmAddrs: host:port on --listen-addr is TCP and QUIC on that port,
// as the defaults are, and TCP alone in a private network; a multiaddr is
// taken as it is; bad forms are usage errors that quote what was typed.
func TestSwarmAddrs(t *testing.T) {
	tests := []struct {
		name, in string
		private  bool
		want     string // the addresses, space-separated
		wantErr  string
	}{
		{name: "host port", in: "0.0.0.0:4141", want: "/ip4/0.0.0.0/tcp/4141 /ip4/0.0.0.0/udp/4141/quic-v1"},
		{name: "ip6", in: "[::1]:4141", want: "/ip6/::1/tcp/4141 /ip6/::1/udp/4141/quic-v1"},
		{name: "localhost", in: "localhost:0", want: "/ip4/127.0.0.1/tcp/0 /ip4/127.0.0.1/udp/0/quic-v1"},
		{name: "private network", in: "0.0.0.0:4141", private: true, want: "/ip4/0.0.0.0/tcp/4141"},
		{name: "multiaddr", in: "/ip4/0.0.0.0/tcp/4141", want: "/ip4/0.0.0.0/tcp/4141"},
		{name: "quic multiaddr", in: "/ip4/0.0.0.0/udp/4141/quic-v1", want: "/ip4/0.0.0.0/udp/4141/quic-v1"},
		{name: "no host", in: ":4141", wantErr: `":4141" needs a host: 0.0.0.0:4141`},
		{name: "bare port", in: "4141", wantErr: `"4141" is neither a multiaddr nor host:port`},
		{name: "name", in: "example.com:4141", wantErr: `"example.com:4141"`},
		{name: "bad multiaddr", in: "/ip4/0.0.0.0/udp/1", wantErr: "cannot listen on"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ms, err := swarmAddrs(tt.in, tt.private)
			if tt.wantErr != "" {
				if !errors.Is(err, node.ErrUsage) || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("swarmAddrs(%q) = %v, %v; want a usage error containing %q", tt.in, ms, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, m := range ms {
				got = append(got, m.String())
			}
			if strings.Join(got, " ") != tt.want {
				t.Errorf("swarmAddrs(%q) = %v, want %s", tt.in, got, tt.want)
			}
		})
	}
}
