package keepalive

import (
	"bytes"
	"context"
	"crypto/rand"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/protocol/ping"
)

// Config says which peers to watch on which host, and how often.
type Config struct {
	// Host is the libp2p host whose connections are pinged.
	Host host.Host
	// Peers lists the peers to watch (those with live streams), read once
	// a round; nil watches none.
	Peers func() []peer.ID
	// Interval is the time between rounds; Timeout how long a ping may
	// take before its peer is cut off. Both must be positive.
	Interval, Timeout time.Duration
	// Keepalive is timeouts.keepalive as the user set it, named in the
	// warning when a peer is cut off.
	Keepalive time.Duration
	// Logger receives that warning; default slog.Default().
	Logger *slog.Logger
	// Unopened, when set (by tests), is told when a probe could not open
	// its stream.
	Unopened func(peer.ID)
}

// Run pings, every cfg.Interval, each peer that cfg.Peers lists, until ctx
// ends; it returns once the last round's probes have. The samples feed the
// peerstore's RTT; and a peer that answers no ping within cfg.Timeout is
// cut off, so that its streams end with a reset rather than hang on a
// connection that is dead but not closed (a partition, a peer that lost
// power, QUIC's 30s idle timeout).
func Run(ctx context.Context, cfg Config) {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	t := time.NewTicker(cfg.Interval)
	defer t.Stop()
	for {
		var wg sync.WaitGroup
		var peers []peer.ID
		if cfg.Peers != nil {
			peers = cfg.Peers()
		}
		seen := make(map[peer.ID]bool, len(peers))
		for _, id := range peers {
			if seen[id] {
				continue
			}
			seen[id] = true
			wg.Go(func() { probe(ctx, cfg, id) })
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
// stream opens but no answer comes within cfg.Timeout, p's connections are
// closed: those open when the probe began, not one that opened while it
// waited (the path came back and a forward dialed again). A stream that
// cannot even be opened in time is not taken as silence: a QUIC
// connection holding its 256 streams makes the next one wait, and cutting
// it would reset every tunnel on it (QUIC's own idle timeout still ends a
// dead one). It pings only an existing connection: right after a cut, p's
// streams are still listed, and a dial then would reconnect to p or,
// across a partition, leave the swarm's dial backoff on p's addresses once
// the path is back.
func probe(ctx context.Context, cfg Config, p peer.ID) {
	h := cfg.Host
	conns := h.Network().ConnsToPeer(p)
	if len(conns) == 0 {
		return
	}
	deadline := time.Now().Add(cfg.Timeout)
	pctx := network.WithNoDial(network.WithAllowLimitedConn(ctx, "keepalive"), "keepalive")
	pctx, cancel := context.WithDeadline(pctx, deadline)
	defer cancel()
	s, err := h.NewStream(pctx, p, ping.ID)
	if err != nil {
		if cfg.Unopened != nil {
			cfg.Unopened(p)
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
		h.Peerstore().RecordLatency(p, time.Since(start))
		return
	}
	// Only silence is the keepalive's business: a quick refusal (no ping
	// protocol, a connection already gone) is not a dead peer.
	if ctx.Err() != nil || time.Now().Before(deadline) {
		return
	}
	cfg.Logger.Warn("peer answered no ping within the keepalive; closing its connections (their streams are reset)",
		"peer", p.String(), "keepalive", cfg.Keepalive.String())
	for _, c := range conns {
		_ = c.Close()
	}
}
