package keepalive

import (
	"context"
	"fmt"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/protocol/ping"

	"github.com/p2ptun/p2ptun/streams"
)

// Result is one round trip of `p2ptun ping`.
type Result struct {
	RTT  time.Duration
	Path string
}

// Ping measures count round trips to p with libp2p's ping protocol over
// the connection h has (the caller connects first), saying which path
// each took; the whole takes at most count times perPing. Its errors say
// what failed; the caller classifies them.
func Ping(ctx context.Context, h host.Host, p peer.ID, count int, perPing time.Duration) ([]Result, error) {
	pctx, cancel := context.WithTimeout(ctx, time.Duration(count)*perPing)
	defer cancel()
	var out []Result
	for res := range ping.Ping(pctx, h, p) {
		if res.Error != nil {
			return out, fmt.Errorf("ping %s: %s", p, res.Error)
		}
		out = append(out, Result{RTT: res.RTT, Path: Path(h, p)})
		if len(out) == count {
			break
		}
	}
	if len(out) < count {
		return out, fmt.Errorf("ping %s: %w", p, pctx.Err())
	}
	return out, nil
}

// Path names the best current path from h to p: "direct", "relayed via …",
// or "not connected".
func Path(h host.Host, p peer.ID) string {
	conns := h.Network().ConnsToPeer(p)
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
