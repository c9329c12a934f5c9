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
	m, err := ma.NewMultiaddr(strings.TrimSpace(multiaddr))
	if err != nil {
		t.Fatalf("not a multiaddr: %q: %v", multiaddr, err)
	}
	a, err := manet.ToNetAddr(m)
	if err != nil {
		t.Fatalf("not a TCP address: %q: %v", multiaddr, err)
	}
	if _, ok := a.(*net.TCPAddr); !ok {
		t.Fatalf("not a TCP address: %q", multiaddr)
	}
	return a.String()
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

// UDPHostPort turns a UDP multiaddr, as `forward` prints it for a UDP
// tunnel (/ip4/127.0.0.1/udp/PORT), into host:port.
func UDPHostPort(t testing.TB, multiaddr string) string {
	t.Helper()
	m, err := ma.NewMultiaddr(strings.TrimSpace(multiaddr))
	if err != nil {
		t.Fatalf("not a multiaddr: %q: %v", multiaddr, err)
	}
	a, err := manet.ToNetAddr(m)
	if _, ok := a.(*net.UDPAddr); err != nil || !ok {
		t.Fatalf("not a UDP address: %q (%v)", multiaddr, err)
	}
	return a.String()
}
