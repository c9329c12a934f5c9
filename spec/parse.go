package spec

import (
	"fmt"
	"net"
	"strconv"
	"strings"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"

	"github.com/p2ptun/p2ptun/oneline"
)

// ProtocolPrefix is the namespace that tunnel protocols live in unless
// custom protocols are allowed, as in kubo's `ipfs p2p`.
const ProtocolPrefix = "/x/"

// reservedPrefixes are libp2p's own protocols; no tunnel may take them over.
var reservedPrefixes = []string{"/ipfs/", "/libp2p/", "/p2p/", "/multistream/", "/meshsub/", "/floodsub/", "/yamux/", "/noise", "/tls/"}

// ownPrefix is p2ptun's own namespace (invites, the DHT); no tunnel may
// take it over either.
const ownPrefix = "/p2ptun/"

// ParseProtocol validates a tunnel protocol name.
func ParseProtocol(s string, allowCustom bool) (protocol.ID, error) {
	if s == "" || s[0] != '/' || strings.ContainsAny(s, " \t\r\n") {
		return "", invalidf("protocol %q must be a path like /x/web", s)
	}
	if strings.HasPrefix(s, ProtocolPrefix) {
		if len(s) == len(ProtocolPrefix) {
			return "", invalidf("protocol %q needs a name after /x/, like /x/web", s)
		}
		return protocol.ID(s), nil
	}
	for _, r := range reservedPrefixes {
		if strings.HasPrefix(s, r) {
			return "", invalidf("protocol %q is reserved by libp2p; use /x/NAME", s)
		}
	}
	if strings.HasPrefix(s, ownPrefix) {
		return "", invalidf("protocol %q is reserved by p2ptun; use /x/NAME", s)
	}
	if !allowCustom {
		return "", invalidf("protocol %q must start with /x/ (or pass --allow-custom-protocol)", s)
	}
	return protocol.ID(s), nil
}

// ParseAddr accepts a multiaddr (/ip4/127.0.0.1/tcp/8080) or a plain
// host:port (127.0.0.1:8080, [::1]:8080, localhost:8080).
func ParseAddr(s string) (ma.Multiaddr, error) {
	if strings.HasPrefix(s, "/") {
		m, err := ma.NewMultiaddr(s)
		if err != nil {
			return nil, invalidf("%q is not a valid multiaddr (%s); use e.g. /ip4/127.0.0.1/tcp/8080", s, oneline.Error(err))
		}
		return m, nil
	}
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return nil, invalidf("%q is neither a multiaddr nor host:port; use e.g. /ip4/127.0.0.1/tcp/8080 or 127.0.0.1:8080", s)
	}
	n, err := strconv.ParseUint(port, 10, 16)
	if err != nil || (n == 0 && port != "0") {
		return nil, invalidf("%q has an invalid port %q", s, port)
	}
	var m ma.Multiaddr
	if ip, zone, ok := parseIP(host); ok {
		// Built from parts, never by formatting a string, so the input
		// cannot add multiaddr components of its own.
		m, err = manet.FromNetAddr(&net.TCPAddr{IP: ip, Port: int(n), Zone: zone})
	} else if isDNSName(host) {
		m, err = ma.NewMultiaddr(fmt.Sprintf("/dns/%s/tcp/%d", host, n))
	} else {
		return nil, invalidf("%q: %q is not an IP address or host name", s, host)
	}
	if err != nil {
		return nil, invalidf("%q: %s", s, oneline.Error(err))
	}
	return m, nil
}

// parseIP parses an IP address with an optional IPv6 zone (fe80::1%eth0).
func parseIP(s string) (net.IP, string, bool) {
	host, zone, _ := strings.Cut(s, "%")
	ip := net.ParseIP(host)
	if ip == nil || (zone != "" && ip.To4() != nil) {
		return nil, "", false
	}
	return ip, zone, true
}

// isDNSName reports whether s is a plausible host name: letters, digits,
// '-', '_' and '.', up to 253 bytes.
func isDNSName(s string) bool {
	if s == "" || len(s) > 253 {
		return false
	}
	for _, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_', r == '.':
		default:
			return false
		}
	}
	return true
}

// ParseTarget parses a listener's target: a TCP address (IP or DNS name),
// a UDP one (/ip4/HOST/udp/PORT: a UDP tunnel), or a Unix socket path
// (/unix/PATH).
func ParseTarget(s string) (ma.Multiaddr, error) {
	m, err := ParseAddr(s)
	if err != nil {
		return nil, err
	}
	if _, _, err := manet.DialArgs(m); err != nil {
		return nil, invalidf("target %q cannot be dialed (%s); use /ip4/HOST/tcp/PORT, /dns/NAME/tcp/PORT or /unix/PATH", m.String(), oneline.Error(err))
	}
	if IsUDP(m) {
		return m, nil
	}
	if _, err := m.ValueForProtocol(ma.P_TCP); err != nil {
		if _, uerr := m.ValueForProtocol(ma.P_UNIX); uerr != nil {
			return nil, invalidf("target %q is not a TCP or Unix address; use /ip4/HOST/tcp/PORT", m.String())
		}
	}
	return m, nil
}

// ParseListenAddr parses a forward's local bind address: an IP and a TCP
// port, or a UDP one (/ip4/HOST/udp/PORT: a UDP tunnel). Shorthands, as
// ssh -L takes them: a bare port (9000) and :9000 mean 127.0.0.1:9000, and
// localhost is 127.0.0.1. Errors quote s as it was written.
func ParseListenAddr(s string) (ma.Multiaddr, error) {
	m, err := ParseAddr(listenShorthand(s))
	if err != nil {
		return nil, err
	}
	network, _, err := manet.DialArgs(m)
	if err != nil || (network != "tcp" && network != "tcp4" && network != "tcp6" && !IsUDP(m)) {
		return nil, invalidf("listen address %q must be an IP and a TCP or UDP port, like 9000, 127.0.0.1:9000, /ip4/127.0.0.1/tcp/9000 or /ip4/127.0.0.1/udp/5353", s)
	}
	for _, p := range []int{ma.P_DNS, ma.P_DNS4, ma.P_DNS6, ma.P_DNSADDR} {
		if _, err := m.ValueForProtocol(p); err == nil {
			return nil, invalidf("listen address %q must use an IP (or localhost), not a name", s)
		}
	}
	return m, nil
}

// listenShorthand is s with a forward's shorthands spelled out: PORT and
// :PORT are 127.0.0.1:PORT, localhost:PORT is 127.0.0.1:PORT.
func listenShorthand(s string) string {
	if s != "" && strings.Trim(s, "0123456789") == "" {
		return "127.0.0.1:" + s
	}
	host, port, err := net.SplitHostPort(s)
	if err != nil || strings.HasPrefix(s, "/") {
		return s
	}
	if host == "" || strings.EqualFold(host, "localhost") {
		return net.JoinHostPort("127.0.0.1", port)
	}
	return s
}

// ParsePeer parses a bare peer ID.
func ParsePeer(s string) (peer.ID, error) {
	id, err := peer.Decode(s)
	if err == nil {
		// peer.Decode takes any multihash; a peer ID is a sha-256 or
		// identity one, as /p2p/ addresses require.
		_, err = ma.NewComponent("p2p", s)
	}
	if err != nil {
		return "", invalidf("%q is not a peer ID (%s); peer IDs look like 12D3KooW… (see `p2ptun id` on that node)", s, oneline.Error(err))
	}
	return id, nil
}

// ParsePeerAddr accepts /p2p/ID, a bare peer ID, or a full multiaddr that
// ends in /p2p/ID, and returns the peer with any addresses given.
func ParsePeerAddr(s string) (peer.AddrInfo, error) {
	if !strings.HasPrefix(s, "/") {
		id, err := ParsePeer(s)
		return peer.AddrInfo{ID: id}, err
	}
	m, err := ma.NewMultiaddr(s)
	if err != nil {
		return peer.AddrInfo{}, invalidf("%q is not a valid multiaddr (%s); use /p2p/PEER-ID or /ip4/HOST/tcp/PORT/p2p/PEER-ID", s, oneline.Error(err))
	}
	ai, err := peer.AddrInfoFromP2pAddr(m)
	if err != nil {
		return peer.AddrInfo{}, invalidf("%q does not end in /p2p/PEER-ID; use /p2p/PEER-ID or /ip4/HOST/tcp/PORT/p2p/PEER-ID", s)
	}
	return *ai, nil
}

// BoundListen is the listen address to save for a forward asked to bind
// requested that bound bound (a multiaddr): requested, in its own form,
// with port 0 replaced by the bound port.
func BoundListen(requested, bound string) string {
	m, err := ParseListenAddr(requested)
	if err != nil {
		return requested
	}
	transport := ma.P_TCP
	if IsUDP(m) {
		transport = ma.P_UDP
	}
	if p, err := m.ValueForProtocol(transport); err != nil || p != "0" {
		return requested
	}
	b, err := ma.NewMultiaddr(bound)
	if err != nil {
		return requested
	}
	port, err := b.ValueForProtocol(transport)
	if err != nil {
		return requested
	}
	if host, _, err := net.SplitHostPort(requested); err == nil && !strings.HasPrefix(requested, "/") {
		return net.JoinHostPort(host, port)
	}
	return bound
}

// IsUDP reports whether m is a plain UDP address (/ip4/HOST/udp/PORT, no
// protocol above UDP such as QUIC): the address that makes a tunnel carry
// datagrams.
func IsUDP(m ma.Multiaddr) bool {
	network, _, err := manet.DialArgs(m)
	if err != nil || (network != "udp" && network != "udp4" && network != "udp6") {
		return false
	}
	last := m[len(m)-1]
	return last.Protocol().Code == ma.P_UDP
}
