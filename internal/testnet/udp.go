package testnet

import (
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
)

// UDPServer is a loopback UDP service run by ServeUDP.
type UDPServer struct {
	// Addr is its multiaddr, /ip4/127.0.0.1/udp/PORT.
	Addr string
	// Received counts the datagrams it has read.
	Received atomic.Int64
}

// ServeUDP answers each datagram on a free loopback UDP port with what
// answer returns for it, sent back to its sender; a nil answer sends
// nothing. At cleanup it closes the socket and waits for its goroutine.
func ServeUDP(t testing.TB, answer func(req []byte) []byte) *UDPServer {
	t.Helper()
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	s := &UDPServer{Addr: "/ip4/127.0.0.1/udp/" + strconv.Itoa(c.LocalAddr().(*net.UDPAddr).Port)}
	var wg sync.WaitGroup
	wg.Go(func() {
		buf := make([]byte, 1<<16)
		for {
			n, from, err := c.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			s.Received.Add(1)
			if reply := answer(buf[:n]); reply != nil {
				_, _ = c.WriteToUDPAddrPort(reply, from)
			}
		}
	})
	t.Cleanup(func() { c.Close(); wg.Wait() })
	return s
}

// FreeUDPPort returns a loopback UDP port that nothing is bound to now:
// a datagram sent to it is refused (ICMP port unreachable).
func FreeUDPPort(t testing.TB) int {
	t.Helper()
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).Port
}
