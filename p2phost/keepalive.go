package p2phost

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/protocol/ping"

	"github.com/p2ptun/p2ptun/streams"
)

// PingResult is one round trip of `p2ptun ping`.
type PingResult struct {
	RTT  time.Duration
	Path string
}

// Ping measures count round trips to p with libp2p's ping protocol over
// the connection it has (the caller connects first), saying which path
// each took; the whole takes at most count times timeouts.stream_open.
// Its errors say what failed; the caller classifies them.
func (h *Host) Ping(ctx context.Context, p peer.ID, count int) ([]PingResult, error) {
	pctx, cancel := context.WithTimeout(ctx, time.Duration(count)*h.cfg.Timeouts.StreamOpen.Std())
	defer cancel()
	var out []PingResult
	for res := range ping.Ping(pctx, h.host, p) {
		if res.Error != nil {
			return out, fmt.Errorf("ping %s: %s", p, res.Error)
		}
		out = append(out, PingResult{RTT: res.RTT, Path: h.Path(p)})
		if len(out) == count {
			break
		}
	}
	if len(out) < count {
		return out, fmt.Errorf("ping %s: %w", p, pctx.Err())
	}
	return out, nil
}

// Path names the best current path to p: "direct", "relayed via …",
// or "not connected".
func (h *Host) Path(p peer.ID) string {
	conns := h.host.Network().ConnsToPeer(p)
	for _, c := range conns {
		if streams.Path(c) == "direct" {
			return "direct"
		}
	}
	if len(conns) > 0 {
		return streams.Path(conns[0])
	}
	return "not connected"
}

// RTT returns the smoothed round-trip time to p that libp2p's ping has
// measured, or 0 if none has.
func (h *Host) RTT(p peer.ID) time.Duration { return h.host.Peerstore().LatencyEWMA(p) }

// probePeers pings, every interval, each peer that has live streams. The
// samples feed `stream ls`'s RTT; and a peer that answers no ping within
// timeout is cut off (the keepalive), so that its streams end with a reset
// rather than hang on a connection that is dead but not closed (a
// partition, a peer that lost power, QUIC's 30s idle timeout).
func (h *Host) probePeers(ctx context.Context, interval, timeout time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		seen := map[peer.ID]bool{}
		var wg sync.WaitGroup
		var active []peer.ID
		if h.cfg.ActivePeers != nil {
			active = h.cfg.ActivePeers()
		}
		for _, id := range active {
			if seen[id] {
				continue
			}
			seen[id] = true
			wg.Go(func() { h.probe(ctx, id, timeout) })
		}
		wg.Wait()
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// probe pings p once and records the RTT in the peerstore. If the ping
// stream opens but no answer comes within timeout, p's connections are
// closed: those open when the probe began, not one that opened while it
// waited (the path came back and a forward dialed again). A stream that
// cannot even be opened in time is not taken as silence: a QUIC
// connection holding its 256 streams makes the next one wait, and cutting
// it would reset every tunnel on it (QUIC's own idle timeout still ends a
// dead one). It pings only an existing connection: right after a cut, p's
// streams are still listed, and a dial then would reconnect to p or,
// across a partition, leave the swarm's dial backoff on p's addresses once
// the path is back.
func (h *Host) probe(ctx context.Context, p peer.ID, timeout time.Duration) {
	conns := h.host.Network().ConnsToPeer(p)
	if len(conns) == 0 {
		return
	}
	deadline := time.Now().Add(timeout)
	pctx := network.WithNoDial(network.WithAllowLimitedConn(ctx, "keepalive"), "keepalive")
	pctx, cancel := context.WithDeadline(pctx, deadline)
	defer cancel()
	s, err := h.host.NewStream(pctx, p, ping.ID)
	if err != nil {
		if h.cfg.UnopenedProbe != nil {
			h.cfg.UnopenedProbe(p)
		}
		return
	}
	defer s.Reset()
	_ = s.SetDeadline(deadline)
	out := make([]byte, ping.PingSize)
	rand.Read(out)
	start := time.Now()
	in := make([]byte, ping.PingSize)
	if _, err = s.Write(out); err == nil {
		_, err = io.ReadFull(s, in)
	}
	if err == nil && bytes.Equal(in, out) {
		h.host.Peerstore().RecordLatency(p, time.Since(start))
		return
	}
	// Only silence is the keepalive's business: a quick refusal (no ping
	// protocol, a connection already gone) is not a dead peer.
	if ctx.Err() != nil || time.Now().Before(deadline) {
		return
	}
	h.log.Warn("peer answered no ping within the keepalive; closing its connections (their streams are reset)",
		"peer", p.String(), "keepalive", h.cfg.Timeouts.Keepalive.Std().String())
	for _, c := range conns {
		_ = c.Close()
	}
}
