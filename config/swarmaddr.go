package config

import (
	"fmt"

	ma "github.com/multiformats/go-multiaddr"
)

// CheckSwarmAddr reports whether the swarm can listen on m: an IP address
// with TCP (optionally WebSocket) or with UDP and QUIC v1, the transports
// the node runs.
func CheckSwarmAddr(m ma.Multiaddr) error {
	var codes []int
	for _, c := range m {
		codes = append(codes, c.Code())
	}
	ok := len(codes) >= 2 && (codes[0] == ma.P_IP4 || codes[0] == ma.P_IP6)
	if ok {
		switch rest := codes[1:]; {
		case rest[0] == ma.P_TCP && (len(rest) == 1 || len(rest) == 2 && rest[1] == ma.P_WS):
		case rest[0] == ma.P_UDP && len(rest) == 2 && rest[1] == ma.P_QUIC_V1:
		default:
			ok = false
		}
	}
	if !ok {
		return fmt.Errorf("the swarm cannot listen on %s: use /ip4/HOST/tcp/PORT, /ip4/HOST/udp/PORT/quic-v1 or /ip4/HOST/tcp/PORT/ws (or /ip6/…)", m)
	}
	return nil
}
