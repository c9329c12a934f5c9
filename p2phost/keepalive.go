package p2phost

import (
	"context"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/p2ptun/p2ptun/p2phost/keepalive"
)

// PingResult is one round trip of `p2ptun ping`.
type PingResult = keepalive.Result

// Ping measures count round trips to p with libp2p's ping protocol over
// the connection it has (the caller connects first), saying which path
// each took; the whole takes at most count times timeouts.stream_open.
// Its errors say what failed; the caller classifies them.
func (h *Host) Ping(ctx context.Context, p peer.ID, count int) ([]PingResult, error) {
	return keepalive.Ping(ctx, h.host, p, count, h.cfg.Timeouts.StreamOpen.Std())
}

// Path names the best current path to p: "direct", "relayed via …",
// or "not connected".
func (h *Host) Path(p peer.ID) string { return keepalive.Path(h.host, p) }

// RTT returns the smoothed round-trip time to p that libp2p's ping has
// measured, or 0 if none has.
func (h *Host) RTT(p peer.ID) time.Duration { return h.host.Peerstore().LatencyEWMA(p) }

// keepaliveConfig is the keepalive's config: the host's peers with live
// tunnel streams and Config.KeepalivePeers, pinged at keepaliveTimes.
func (h *Host) keepaliveConfig() keepalive.Config {
	interval, timeout := h.keepaliveTimes()
	return keepalive.Config{
		Host: h.host, Peers: h.keepalivePeers, Interval: interval, Timeout: timeout,
		Keepalive: h.cfg.Timeouts.Keepalive.Std(), Logger: h.log, Unopened: h.cfg.UnopenedProbe,
	}
}
