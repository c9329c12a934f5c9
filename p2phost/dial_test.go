package p2phost

import (
	"testing"

	ma "github.com/multiformats/go-multiaddr"
)

func TestPreferTCPKeepsQUICOnlyPeersReachable(t *testing.T) {
	quic := ma.StringCast("/ip4/127.0.0.1/udp/4141/quic-v1")
	got := preferTCP([]ma.Multiaddr{quic})
	if len(got) != 1 || got[0].Delay != 0 {
		t.Fatalf("a QUIC-only peer ranks as %v, want its address at once", got)
	}
	tcp := ma.StringCast("/ip4/127.0.0.1/tcp/4141")
	got = preferTCP([]ma.Multiaddr{quic, tcp})
	if len(got) != 2 || !got[0].Addr.Equal(tcp) || got[1].Delay < quicAfterTCP {
		t.Fatalf("ranking = %v, want TCP first and QUIC at least %v later", got, quicAfterTCP)
	}
}
