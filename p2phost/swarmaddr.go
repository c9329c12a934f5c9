package p2phost

import (
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"

	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"
)

// probeListenAddrs binds each swarm address for a moment, as a plain
// socket, before go-libp2p binds it for good. go-libp2p binds TCP with
// SO_REUSEPORT (hole punching dials from the listen port), so a second
// daemon on a port would start, and the kernel would split the port's
// inbound connections between the two. A plain bind fails when anything
// holds the port, with SO_REUSEPORT or not. It also finds an address that
// is not on this host, which go-libp2p would only log.
func probeListenAddrs(addrs []ma.Multiaddr) error {
	for _, a := range addrs {
		network, hostport, err := manet.DialArgs(a)
		if err != nil {
			continue // not an IP address: New refused it
		}
		var c io.Closer
		switch network {
		case "tcp4", "tcp6":
			c, err = net.Listen(network, hostport)
		case "udp4", "udp6":
			c, err = net.ListenPacket(network, hostport)
		default:
			continue
		}
		switch {
		case err == nil:
			c.Close()
		case errors.Is(err, syscall.EADDRINUSE):
			return fmt.Errorf("%w: swarm listen address %s: another process holds the port (another p2ptun or kubo daemon?): pass --listen-addr with another port, or stop it", ErrAddrInUse, a)
		case errors.Is(err, syscall.EADDRNOTAVAIL):
			host, _, _ := net.SplitHostPort(hostport)
			return fmt.Errorf("%w: swarm listen address %s: %s is not an address of this host: use one of its addresses, or 0.0.0.0 or :: for all of them", ErrUsage, a, host)
		case errors.Is(err, syscall.EAFNOSUPPORT):
			// No IPv6 on this host: go-libp2p skips the address, as before.
		default:
			return fmt.Errorf("swarm listen address %s: %w", a, err)
		}
	}
	return nil
}
