package config

import (
	"fmt"
	"net"
	"strconv"
	"strings"

	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"
)

// MetricsAddr turns a metrics listen address, host:port or a multiaddr
// (/ip4/127.0.0.1/tcp/9464), into the host:port to bind. A host-less
// ":9464" becomes "127.0.0.1:9464": metrics stay on loopback unless the
// user names another address (0.0.0.0 for every interface). "" stays ""
// (metrics off). The host must be an IP address or localhost.
func MetricsAddr(s string) (string, error) {
	if s == "" {
		return "", nil
	}
	const want = "use HOST:PORT like 127.0.0.1:9464, or /ip4/127.0.0.1/tcp/9464"
	var host, port string
	if strings.HasPrefix(s, "/") {
		m, err := ma.NewMultiaddr(s)
		if err != nil {
			return "", fmt.Errorf("%q is not a valid multiaddr; %s", s, want)
		}
		network, hp, err := manet.DialArgs(m)
		if err != nil || !strings.HasPrefix(network, "tcp") || (m[0].Code() != ma.P_IP4 && m[0].Code() != ma.P_IP6) {
			return "", fmt.Errorf("%q is not an IP and TCP port; %s", s, want)
		}
		host, port, _ = net.SplitHostPort(hp)
	} else {
		var err error
		if host, port, err = net.SplitHostPort(s); err != nil {
			return "", fmt.Errorf("%q is neither host:port nor a multiaddr; %s", s, want)
		}
		if host == "" {
			host = "127.0.0.1"
		}
		if host != "localhost" && net.ParseIP(host) == nil {
			return "", fmt.Errorf("%q: %q is not an IP address; %s", s, host, want)
		}
	}
	if n, err := strconv.ParseUint(port, 10, 16); err != nil || (n == 0 && port != "0") {
		return "", fmt.Errorf("%q has an invalid port %q; %s", s, port, want)
	}
	return net.JoinHostPort(host, port), nil
}
