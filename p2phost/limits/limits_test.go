package limits

import (
	"log/slog"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/p2ptun/p2ptun/config"
	"github.com/p2ptun/p2ptun/internal/harness"
	"github.com/p2ptun/p2ptun/peerlog"
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

// TestConnWindowMemory: with the default limits, a connection's scope
// lets yamux grow one stream's receive window to its maximum beside the
// initial windows of the connection's other streams, reserved as go-yamux
// does: 256 KiB at priority 255 when a stream opens, each doubling at
// priority 128 (granted only while the scope stays under about half its
// cap). A window smaller than the bandwidth-delay product caps a tunnel:
// 12.5 MB at 1 Gbit/s × 100 ms.
func TestConnWindowMemory(t *testing.T) {
	// go-yamux credits half a window at a time: one stream needs twice
	// the path's bandwidth-delay product, 1 Gbit/s × 100 ms here.
	const maxWindow = MaxStreamWindow
	if maxWindow < 2*12_500_000 {
		t.Fatalf("a %d-byte window holds less than twice 1 Gbit/s × 100 ms", maxWindow)
	}
	rm, err := NewResourceManager(config.Default().Limits, nil, peerlog.New(slog.New(slog.DiscardHandler), time.Minute, time.Now), false)
	if err != nil {
		t.Fatal(err)
	}
	defer rm.Close()
	conn, err := rm.OpenConnection(network.DirOutbound, true, ma.StringCast("/ip4/192.0.2.7/tcp/4001"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Done()
	if err := conn.SetPeer(harness.NewPeer(t)); err != nil {
		t.Fatal(err)
	}
	const initial = 256 << 10
	// Other streams on the connection: a tunnel's control stream
	// (iperf3's), identify, ping.
	for range 3 {
		span, err := conn.BeginSpan()
		if err != nil {
			t.Fatal(err)
		}
		defer span.Done()
		if err := span.ReserveMemory(initial, 255); err != nil {
			t.Fatalf("a stream's initial window: %v", err)
		}
	}
	span, err := conn.BeginSpan()
	if err != nil {
		t.Fatal(err)
	}
	defer span.Done()
	if err := span.ReserveMemory(initial, 255); err != nil {
		t.Fatal(err)
	}
	for w := initial; w < maxWindow; w *= 2 {
		if err := span.ReserveMemory(w, 128); err != nil {
			t.Fatalf("growing a stream's window from %d to %d bytes (of %d): %v", w, 2*w, maxWindow, err)
		}
	}
}
