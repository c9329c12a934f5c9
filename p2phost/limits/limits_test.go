package limits

import (
	"testing"

	ma "github.com/multiformats/go-multiaddr"
)

// Inbound connections in their handshake are counted per source: an IPv4
// address, an IPv6 /56; a relayed connection has no source of its own.
func TestSourcePrefix(t *testing.T) {
	for _, tc := range []struct {
		name, addr, want string
		ok               bool
	}{
		{"ipv4", "/ip4/192.0.2.7/tcp/4001", "192.0.2.7/32", true},
		{"ipv4 quic", "/ip4/192.0.2.7/udp/4001/quic-v1", "192.0.2.7/32", true},
		{"ipv6 /56", "/ip6/2001:db8:1:2ff:1::9/tcp/4001", "2001:db8:1:200::/56", true},
		{"ipv4-mapped ipv6", "/ip6/::ffff:192.0.2.7/tcp/4001", "192.0.2.7/32", true},
		{"relayed", "/p2p-circuit", "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, ok := sourcePrefix(ma.StringCast(tc.addr))
			if ok != tc.ok || (ok && p.String() != tc.want) {
				t.Errorf("sourcePrefix(%s) = %v, %v; want %s, %v", tc.addr, p, ok, tc.want, tc.ok)
			}
		})
	}
}

func TestMiB(t *testing.T) {
	if got := MiB(3); got != 3<<20 {
		t.Errorf("MiB(3) = %d, want %d", got, 3<<20)
	}
}
