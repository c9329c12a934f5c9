package node

import (
	"strings"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/protocol"
	rcmgr "github.com/libp2p/go-libp2p/p2p/host/resource-manager"

	"github.com/p2ptun/p2ptun/config"
	"github.com/p2ptun/p2ptun/peerlog"
)

// Caps on open invite streams, node-wide and per peer.
const (
	maxInviteStreams        = 64
	maxInviteStreamsPerPeer = 2
)

// newResourceManager builds go-libp2p's resource manager from the config's
// limits, over go-libp2p's autoscaled defaults (which still apply to
// everything the config does not name, such as libp2p's own services).
// With metrics on, it also reports libp2p_rcmgr_* through go-libp2p's
// stats reporter (the host registers those with the node's registry).
func newResourceManager(l config.Limits, plog *peerlog.Logger, metrics bool) (network.ResourceManager, error) {
	scaling := rcmgr.DefaultLimits
	libp2p.SetDefaultServiceLimits(&scaling)
	streams := func(n int) rcmgr.ResourceLimits {
		v := rcmgr.LimitVal(n)
		return rcmgr.ResourceLimits{Streams: v, StreamsInbound: v, StreamsOutbound: v}
	}
	system := streams(l.Streams)
	system.Conns, system.ConnsInbound, system.ConnsOutbound = rcmgr.LimitVal(l.Connections), rcmgr.LimitVal(l.Connections), rcmgr.LimitVal(l.Connections)
	system.Memory = rcmgr.LimitVal64(mib(l.MemoryMiB))
	peerLimits := streams(l.PeerStreams)
	peerLimits.Memory = rcmgr.LimitVal64(mib(l.PeerMemoryMiB))
	partial := rcmgr.PartialLimitConfig{
		System: system,
		// Streams are transient until their protocol is negotiated. The
		// transient scope is shared by every peer, so it gets the
		// node-wide cap: each peer's share of it is already bounded by
		// its own peer scope, and one peer must not be able to fill it.
		Transient:           streams(l.Streams),
		PeerDefault:         peerLimits,
		ProtocolDefault:     streams(l.ListenerStreams),
		ProtocolPeerDefault: streams(l.ListenerPeerStreams),
		// Any peer may present an invite; a legitimate one presents one
		// at a time, so a few open streams each, and a few dozen in all,
		// are plenty.
		Protocol:     map[protocol.ID]rcmgr.ResourceLimits{InviteProtocol: streams(maxInviteStreams)},
		ProtocolPeer: map[protocol.ID]rcmgr.ResourceLimits{InviteProtocol: streams(maxInviteStreamsPerPeer)},
	}
	limits := partial.Build(scaling.AutoScale())
	opts := []rcmgr.Option{rcmgr.WithTraceReporter(blockReporter{plog})}
	if !metrics {
		opts = append(opts, rcmgr.WithMetricsDisabled())
	}
	return rcmgr.NewResourceManager(rcmgr.NewFixedLimiter(limits), opts...)
}

// mib is n MiB in bytes (config.Validate caps n at config.MaxMiB).
func mib(n int) int64 { return int64(n) << 20 }

// blockReporter logs the resource manager's refusals, once per peer (or
// scope) per interval.
type blockReporter struct{ log *peerlog.Logger }

func (r blockReporter) ConsumeEvent(evt rcmgr.TraceEvt) {
	var what string
	switch evt.Type {
	case rcmgr.TraceBlockAddStreamEvt:
		what = "stream"
	case rcmgr.TraceBlockAddConnEvt:
		what = "connection"
	case rcmgr.TraceBlockReserveMemoryEvt:
		what = "memory"
	default:
		return
	}
	key, args := evt.Name, []any{"scope", evt.Name}
	if _, p, ok := strings.Cut(evt.Name, "peer:"); ok {
		p, _, _ = strings.Cut(p, ".")
		key, args = p, append(args, "peer", p)
	}
	r.log.Warn("limit "+what+" "+key, "resource limit reached; refused a "+what, args...)
}
