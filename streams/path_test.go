package streams

import (
	"testing"

	"github.com/libp2p/go-libp2p/core/network"
	ma "github.com/multiformats/go-multiaddr"
)

type fakeConn struct {
	network.Conn
	addr ma.Multiaddr
}

func (f fakeConn) RemoteMultiaddr() ma.Multiaddr { return f.addr }

func TestPath(t *testing.T) {
	const relay = "12D3KooWAi4PnzvqA2WdVd8v2RDRQSjywZPKrTQM7Vfr3E5sh2Nd"
	for _, tc := range []struct{ addr, want string }{
		{"/ip4/127.0.0.1/tcp/4141", "direct"},
		{"/ip4/127.0.0.1/udp/4141/quic-v1", "direct"},
		{"/ip4/127.0.0.1/tcp/4141/p2p/" + relay + "/p2p-circuit", "relayed via " + relay},
		{"/p2p-circuit", "relayed"},
	} {
		if got := Path(fakeConn{addr: ma.StringCast(tc.addr)}); got != tc.want {
			t.Errorf("Path(%s) = %q, want %q", tc.addr, got, tc.want)
		}
	}
}
