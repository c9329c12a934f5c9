package harness

import (
	"net"
	"strings"
	"testing"

	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"
)

// HostPort turns a TCP multiaddr, as `forward` prints it
// (/ip4/127.0.0.1/tcp/PORT), into host:port.
func HostPort(t testing.TB, multiaddr string) string {
	t.Helper()
	if _, ok := netAddr(t, multiaddr).(*net.TCPAddr); !ok {
		t.Fatalf("not a TCP address: %q", multiaddr)
	}
	return netAddr(t, multiaddr).String()
}

// UDPHostPort turns a UDP multiaddr, as `forward` prints it for a UDP
// tunnel (/ip4/127.0.0.1/udp/PORT), into host:port.
func UDPHostPort(t testing.TB, multiaddr string) string {
	t.Helper()
	if _, ok := netAddr(t, multiaddr).(*net.UDPAddr); !ok {
		t.Fatalf("not a UDP address: %q", multiaddr)
	}
	return netAddr(t, multiaddr).String()
}

// netAddr parses a TCP or UDP multiaddr.
func netAddr(t testing.TB, multiaddr string) net.Addr {
	t.Helper()
	m, err := ma.NewMultiaddr(strings.TrimSpace(multiaddr))
	if err != nil {
		t.Fatalf("not a multiaddr: %q: %v", multiaddr, err)
	}
	a, err := manet.ToNetAddr(m)
	if err != nil {
		t.Fatalf("not a TCP or UDP address: %q: %v", multiaddr, err)
	}
	return a
}

// TCPMultiaddr turns host:port into its /ip4|ip6/…/tcp/PORT multiaddr.
func TCPMultiaddr(t testing.TB, hostPort string) ma.Multiaddr {
	t.Helper()
	a, err := net.ResolveTCPAddr("tcp", hostPort)
	if err != nil {
		t.Fatal(err)
	}
	m, err := manet.FromNetAddr(a)
	if err != nil {
		t.Fatal(err)
	}
	return m
}
