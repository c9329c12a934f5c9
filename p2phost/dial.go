package p2phost

import (
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/p2p/net/swarm"
	ma "github.com/multiformats/go-multiaddr"
)

// quicAfterTCP is how long QUIC addresses wait after the last TCP dial
// starts when a peer has both.
const quicAfterTCP = 2 * swarm.PublicTCPDelay

// preferTCP ranks a peer's addresses for dialing like go-libp2p's default
// ranker, but with TCP first and QUIC held back by quicAfterTCP when the
// peer has a TCP address. go-libp2p prefers QUIC; for tunnels TCP is the
// better default: make bench measured it at about twice QUIC's throughput
// at a third of its CPU per byte on this kind of machine, and a QUIC
// connection carries at most 256 streams (go-libp2p's fixed cap), so
// tunnels beyond that wait, where yamux over TCP is limited only by
// [limits]. Hole punching dials all addresses at once and is unaffected.
func preferTCP(addrs []ma.Multiaddr) []network.AddrDelay {
	var udp, rest []ma.Multiaddr
	hasTCP := false
	for _, a := range addrs {
		switch {
		case isUDP(a):
			udp = append(udp, a)
		default:
			if _, err := a.ValueForProtocol(ma.P_TCP); err == nil {
				if _, err := a.ValueForProtocol(ma.P_CIRCUIT); err != nil {
					hasTCP = true
				}
			}
			rest = append(rest, a)
		}
	}
	if !hasTCP || len(udp) == 0 {
		return swarm.DefaultDialRanker(addrs)
	}
	out := swarm.DefaultDialRanker(rest)
	var last time.Duration
	for _, d := range out {
		last = max(last, d.Delay)
	}
	for _, d := range swarm.DefaultDialRanker(udp) {
		d.Delay += last + quicAfterTCP
		out = append(out, d)
	}
	return out
}

// isUDP reports whether a is a direct UDP address (QUIC, WebTransport,
// WebRTC); relayed addresses are not.
func isUDP(a ma.Multiaddr) bool {
	if _, err := a.ValueForProtocol(ma.P_CIRCUIT); err == nil {
		return false
	}
	_, err := a.ValueForProtocol(ma.P_UDP)
	return err == nil
}
