package limits

import (
	"fmt"
	"net/netip"
	"strings"
	"sync"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	rcmgr "github.com/libp2p/go-libp2p/p2p/host/resource-manager"
	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"

	"github.com/p2ptun/p2ptun/config"
	"github.com/p2ptun/p2ptun/peerlog"
)

// Protocol caps one protocol's open streams: node-wide and per peer.
type Protocol struct {
	Streams, PeerStreams int
}

// MaxStreamWindow is the largest receive window go-yamux may grow a
// stream's to (go-libp2p's default is 16 MiB). go-yamux starts a stream at
// 256 KiB and doubles the window while a window's worth is read within 4
// RTTs, and gives credit back once half a window has been read, so one
// stream moves at most about half a window a round trip: 1 Gbit/s × 100 ms
// (12.5 MB) needs more than 16 MiB, and go-yamux v5.1.0 also loses the
// credit for the half read at each doubling (see README, "WAN links").
// The memory is used only while a tunnel's target reads slower than the
// peer sends, and within connMemoryMiB.
const MaxStreamWindow = 64 << 20

// connMemoryMiB caps what one connection reserves, within its peer's cap.
// go-yamux grows a window only while the connection's reservations stay
// under about half this cap (it asks at priority 128): a bit more than
// twice MaxStreamWindow lets one stream reach it (having reserved each
// step of its doubling, 64 MiB in all) beside other streams' 256 KiB
// initial windows. go-libp2p's default, 32 MiB, stopped a stream at 8 MiB.
const connMemoryMiB = 2*MaxStreamWindow>>20 + 16

// NewResourceManager builds go-libp2p's resource manager from the config's
// limits, over go-libp2p's autoscaled defaults (which still apply to
// everything the config does not name, such as libp2p's own services).
// With metrics on, it also reports libp2p_rcmgr_* through go-libp2p's
// stats reporter (the host registers those with the node's registry).
func NewResourceManager(l config.Limits, protos map[protocol.ID]Protocol, plog *peerlog.Logger, metrics bool) (network.ResourceManager, error) {
	scaling := rcmgr.DefaultLimits
	libp2p.SetDefaultServiceLimits(&scaling)
	streams := func(n int) rcmgr.ResourceLimits {
		v := rcmgr.LimitVal(n)
		return rcmgr.ResourceLimits{Streams: v, StreamsInbound: v, StreamsOutbound: v}
	}
	system := streams(l.Streams)
	system.Conns, system.ConnsInbound, system.ConnsOutbound = rcmgr.LimitVal(l.Connections), rcmgr.LimitVal(l.Connections), rcmgr.LimitVal(l.Connections)
	system.Memory = rcmgr.LimitVal64(MiB(l.MemoryMiB))
	peerLimits := streams(l.PeerStreams)
	peerLimits.Memory = rcmgr.LimitVal64(MiB(l.PeerMemoryMiB))
	scaled := scaling.AutoScale()
	// Connections are transient until their handshake names the peer.
	// Inbound ones there are unauthenticated: l.PendingConnections of
	// them, next to go-libp2p's own allowance for outbound dials.
	transient := streams(l.Streams)
	outbound := scaled.ToPartialLimitConfig().Transient.ConnsOutbound
	transient.ConnsInbound = rcmgr.LimitVal(l.PendingConnections)
	transient.ConnsOutbound = outbound
	transient.Conns = rcmgr.LimitVal(l.PendingConnections + int(outbound))
	transient.FD = transient.Conns
	partial := rcmgr.PartialLimitConfig{
		System: system,
		// Streams are transient until their protocol is negotiated. The
		// transient scope is shared by every peer, so it gets the
		// node-wide cap: each peer's share of it is already bounded by
		// its own peer scope, and one peer must not be able to fill it.
		Transient:           transient,
		PeerDefault:         peerLimits,
		Conn:                rcmgr.ResourceLimits{Memory: rcmgr.LimitVal64(MiB(min(connMemoryMiB, l.PeerMemoryMiB)))},
		ProtocolDefault:     streams(l.ListenerStreams),
		ProtocolPeerDefault: streams(l.ListenerPeerStreams),
		Protocol:            map[protocol.ID]rcmgr.ResourceLimits{},
		ProtocolPeer:        map[protocol.ID]rcmgr.ResourceLimits{},
	}
	// The caller's own protocols (invites) get their own caps.
	for p, pl := range protos {
		partial.Protocol[p] = streams(pl.Streams)
		partial.ProtocolPeer[p] = streams(pl.PeerStreams)
	}
	limits := partial.Build(scaled)
	opts := []rcmgr.Option{rcmgr.WithTraceReporter(blockReporter{plog})}
	if !metrics {
		opts = append(opts, rcmgr.WithMetricsDisabled())
	}
	rm, err := rcmgr.NewResourceManager(rcmgr.NewFixedLimiter(limits), opts...)
	if err != nil {
		return nil, err
	}
	return &pendingLimit{ResourceManager: rm, perSource: l.PendingConnectionsPerIP, log: plog, pending: make(map[netip.Prefix]int)}, nil
}

// pendingLimit caps the inbound connections each source (an IPv4 address,
// an IPv6 /56) has in their handshake, so that one host cannot hold all of
// the transient scope's pending connections. go-libp2p's own per-address
// limits count established connections too, and spare loopback.
type pendingLimit struct {
	network.ResourceManager
	perSource int
	log       *peerlog.Logger

	mu      sync.Mutex
	pending map[netip.Prefix]int
}

// sourcePrefix is the source an inbound connection is counted under; ok
// is false for an address without an IP (a relayed connection).
func sourcePrefix(endpoint ma.Multiaddr) (netip.Prefix, bool) {
	ip, err := manet.ToIP(endpoint)
	if err != nil {
		return netip.Prefix{}, false
	}
	a, ok := netip.AddrFromSlice(ip)
	if !ok {
		return netip.Prefix{}, false
	}
	a = a.Unmap()
	bits := 32
	if a.Is6() {
		bits = 56
	}
	p, err := a.Prefix(bits)
	return p, err == nil
}

func (r *pendingLimit) OpenConnection(dir network.Direction, usefd bool, endpoint ma.Multiaddr) (network.ConnManagementScope, error) {
	src, ok := sourcePrefix(endpoint)
	if dir != network.DirInbound || !ok {
		return r.ResourceManager.OpenConnection(dir, usefd, endpoint)
	}
	r.mu.Lock()
	if r.pending[src] >= r.perSource {
		r.mu.Unlock()
		r.log.Warn("pending "+src.String(), "resource limit reached; refused a connection: too many from one address in their handshake (limits.pending_connections_per_ip)", "source", src.String())
		return nil, fmt.Errorf("%w: %d connections from %s in their handshake", network.ErrResourceLimitExceeded, r.perSource, src)
	}
	r.pending[src]++
	r.mu.Unlock()
	s, err := r.ResourceManager.OpenConnection(dir, usefd, endpoint)
	if err != nil {
		r.release(src)
		return nil, err
	}
	p := &pendingScope{ConnManagementScope: s}
	p.handshaken = sync.OnceFunc(func() { r.release(src) })
	return p, nil
}

func (r *pendingLimit) release(src netip.Prefix) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.pending[src]--; r.pending[src] <= 0 {
		delete(r.pending, src)
	}
}

// pendingScope is a connection's scope that stops counting as pending
// once the handshake has named its peer, or the connection has ended.
type pendingScope struct {
	network.ConnManagementScope
	handshaken func()
}

func (s *pendingScope) SetPeer(p peer.ID) error {
	s.handshaken()
	return s.ConnManagementScope.SetPeer(p)
}

func (s *pendingScope) Done() {
	s.handshaken()
	s.ConnManagementScope.Done()
}

// MiB is n MiB in bytes (config.Validate caps n at config.MaxMiB).
func MiB(n int) int64 { return int64(n) << 20 }

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
