package listen

import (
	"bufio"
	"bytes"
	"context"
	"net"
	"testing"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"
	"github.com/pires/go-proxyproto"

	"github.com/p2ptun/p2ptun/internal/harness"
	"github.com/p2ptun/p2ptun/internal/testnet"
	"github.com/p2ptun/p2ptun/refusal"
)

// connAddrs are the server's view of its connection from the client: the
// header's source and destination.
func connAddrs(t *testing.T, tn *tunnel) (src, dst string) {
	t.Helper()
	conns := tn.server.Network().ConnsToPeer(tn.client.ID())
	if len(conns) != 1 {
		t.Fatalf("%d connections from the client, want 1", len(conns))
	}
	r, err := manet.ToNetAddr(conns[0].RemoteMultiaddr())
	if err != nil {
		t.Fatal(err)
	}
	l, err := manet.ToNetAddr(conns[0].LocalMultiaddr())
	if err != nil {
		t.Fatal(err)
	}
	return r.String(), l.String()
}

func TestProxyProtocolHeaderComesFirst(t *testing.T) {
	for _, version := range []byte{1, 2} {
		t.Run("v"+string('0'+version), func(t *testing.T) {
			target, got := testnet.ServeProxied(t)
			tn := startListener(t, Config{Target: harness.TCPMultiaddr(t, target), AllowAll: true, ProxyProtocol: version})
			h := testnet.EchoProxied(t, tn.open(t), got, "data")
			src, dst := connAddrs(t, tn)
			if h.Version != version || !h.Command.IsProxy() || h.TransportProtocol != proxyproto.TCPv4 {
				t.Errorf("header version %d, command %#x, transport %#x; want %d, PROXY, TCP over IPv4", h.Version, h.Command, h.TransportProtocol, version)
			}
			if h.SourceAddr.String() != src || h.DestinationAddr.String() != dst {
				t.Errorf("header says %s -> %s, want the connection's %s -> %s", h.SourceAddr, h.DestinationAddr, src, dst)
			}
			tlvs, err := h.TLVs()
			if err != nil {
				t.Fatal(err)
			}
			want := []proxyproto.TLV{{Type: PeerIDTLV, Value: []byte(tn.client.ID().String())}}
			if version == 1 {
				want = nil // v1 has no TLVs
			}
			if len(tlvs) != len(want) || len(want) == 1 && (tlvs[0].Type != 0xE0 || !bytes.Equal(tlvs[0].Value, want[0].Value)) {
				t.Errorf("TLVs %+v, want %+v", tlvs, want)
			}
		})
	}
}

// relayedConn is a connection through a relay, as ProxyHeader sees it.
type relayedConn struct {
	network.Conn // nil: only the methods below are called
	peer         peer.ID
}

func (c relayedConn) RemotePeer() peer.ID { return c.peer }
func (c relayedConn) RemoteMultiaddr() ma.Multiaddr {
	return ma.StringCast("/ip4/198.51.100.7/tcp/4001/p2p/12D3KooWKnDwDAPMGDwFbzc9yJnRf3hyMBTKsHZpkAY1BbPB3moa/p2p-circuit")
}
func (c relayedConn) LocalMultiaddr() ma.Multiaddr { return ma.StringCast("/p2p-circuit") }

// TestProxyProtocolRelayedSaysUnknown: a relayed connection has no client
// address to tell; the relay's must not pass for it.
func TestProxyProtocolRelayedSaysUnknown(t *testing.T) {
	id := harness.NewPeer(t)
	v1, err := ProxyHeader(1, relayedConn{peer: id})
	if err != nil || string(v1) != "PROXY UNKNOWN\r\n" {
		t.Fatalf("v1 header %q, %v; want PROXY UNKNOWN", v1, err)
	}
	v2, err := ProxyHeader(2, relayedConn{peer: id})
	if err != nil {
		t.Fatal(err)
	}
	h, err := proxyproto.Read(bufio.NewReader(bytes.NewReader(v2)))
	if err != nil {
		t.Fatal(err)
	}
	tlvs, err := h.TLVs()
	if err != nil {
		t.Fatal(err)
	}
	if !h.Command.IsLocal() || h.TransportProtocol != proxyproto.UNSPEC || h.SourceAddr != nil ||
		len(tlvs) != 1 || tlvs[0].Type != PeerIDTLV || string(tlvs[0].Value) != id.String() {
		t.Fatalf("v2 header %+v with TLVs %+v; want LOCAL, no addresses, the peer ID", h, tlvs)
	}
}

func TestIPAddr(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"/ip4/192.0.2.1/tcp/4001", "192.0.2.1:4001"},
		{"/ip6/2001:db8::1/udp/4001/quic-v1", "[2001:db8::1]:4001"},
		{"/ip4/192.0.2.1/tcp/443/tls/ws", "192.0.2.1:443"},
		{"/ip4/192.0.2.1/tcp/4001/p2p/12D3KooWKnDwDAPMGDwFbzc9yJnRf3hyMBTKsHZpkAY1BbPB3moa/p2p-circuit", ""},
		{"/p2p-circuit", ""},
		{"/dns/example.com/tcp/80", ""},
		{"/unix/tmp/sock", ""},
	} {
		t.Run(tc.in, func(t *testing.T) {
			a := ipAddr(ma.StringCast(tc.in))
			if got := func() string {
				if a == nil {
					return ""
				}
				return a.String()
			}(); got != tc.want {
				t.Fatalf("ipAddr = %q, want %q", got, tc.want)
			}
			if a != nil {
				if _, ok := a.(*net.TCPAddr); !ok {
					t.Fatalf("ipAddr gave a %T", a)
				}
			}
		})
	}
}

func TestProxyProtocolConfig(t *testing.T) {
	target := harness.TCPMultiaddr(t, "127.0.0.1:1")
	for _, c := range []Config{
		{ProxyProtocol: 3},
		{ProxyProtocol: 2, ReportPeerID: true},
	} {
		c.Protocol, c.Target, c.AllowAll = proto, target, true
		if _, err := New(newHost(t), c); err == nil {
			t.Errorf("New accepted PROXY protocol %d with ReportPeerID %v", c.ProxyProtocol, c.ReportPeerID)
		}
	}
}

// TestPreambleToClosedTargetFails: a target that accepts and closes at
// once (a RST) before the PROXY header or the peer ID line is written
// fails the stream as a target failure: the peer's stream is reset with
// the target_dial code and the failure is reported with that cause, so
// that events and metrics count it.
func TestPreambleToClosedTargetFails(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
	}{
		{"PROXY v1", Config{ProxyProtocol: 1}},
		{"PROXY v2", Config{ProxyProtocol: 2}},
		{"report peer ID", Config{ReportPeerID: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// The target closes with a RST once the dial has returned;
			// the dial then waits for the RST, so the write is certain to
			// find the connection gone.
			dialed := make(chan struct{})
			target := testnet.Serve(t, func(c *net.TCPConn) {
				<-dialed
				_ = c.SetLinger(0)
				c.Close()
			})
			tc.cfg.Dial = func(ctx context.Context, network, addr string) (net.Conn, error) {
				c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
				if err != nil {
					return nil, err
				}
				close(dialed)
				_, _ = c.Read(make([]byte, 1))
				return c, nil
			}
			tc.cfg.Target, tc.cfg.AllowAll = harness.TCPMultiaddr(t, target), true
			tn := startListener(t, tc.cfg)
			tn.refusedWith(t, refusal.TargetDial)
			if got := tn.streams.List(); len(got) != 0 {
				t.Fatalf("a failed stream is registered: %+v", got)
			}
		})
	}
}
