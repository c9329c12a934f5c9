package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/event"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/pnet"
	"github.com/libp2p/go-libp2p/core/protocol"
	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/p2ptun/p2ptun/access"
	"github.com/p2ptun/p2ptun/config"
	"github.com/p2ptun/p2ptun/invite"
	"github.com/p2ptun/p2ptun/p2phost"
	"github.com/p2ptun/p2ptun/peerlog"
	"github.com/p2ptun/p2ptun/registry"
	"github.com/p2ptun/p2ptun/telemetry"
)

// Options configures a Node. Key and ListenAddrs are required.
type Options struct {
	// Key is the node's identity.
	Key crypto.PrivKey
	// ListenAddrs are the swarm's listen addresses.
	ListenAddrs []ma.Multiaddr
	// Timeouts bound dials and stream opens; zero fields take the
	// config package's defaults.
	Timeouts config.Timeouts
	// UserAgent is announced to peers through identify.
	UserAgent string
	// Logger is used for lifecycle and per-connection events; default
	// slog.Default().
	Logger *slog.Logger
	// Limits caps connections, streams, stream rates and memory; zero
	// fields take the config package's defaults.
	Limits config.Limits
	// ConnManager sets the connection manager's water marks; zero fields
	// take go-libp2p's defaults (160, 192, one minute). Peers with live
	// streams are never trimmed.
	ConnManager p2phost.ConnManager
	// Allow and Deny seed the node-wide access policy when Access is nil:
	// the config file's lists, which runtime edits change and SaveAccess
	// persists.
	Allow, Deny []peer.ID
	// RunAllow and RunDeny are added to the policy for this run only (the
	// daemon's --allow-peer and --deny-peer): enforced like the others,
	// but never passed to SaveAccess, however the policy is edited.
	RunAllow, RunDeny []peer.ID
	// Access is the node-wide allow/deny policy; default built from Allow
	// and Deny (open when both are empty).
	Access *access.Policy
	// SaveAccess persists the policy after a change at runtime; nil keeps
	// changes in memory only (an ephemeral node).
	SaveAccess func(config.Access) error
	// SaveListen and SaveForward append a tunnel to the config file for
	// `listen --save` and `forward --save`; nil refuses --save.
	SaveListen  func(config.ListenTunnel) error
	SaveForward func(config.ForwardTunnel) error
	// SwarmKey makes the node part of a private network; only TCP and
	// WebSocket addresses are allowed with it.
	SwarmKey pnet.PSK
	// Relay, when set, makes this node a circuit relay v2 service for the
	// peers it allows (`p2ptun relay`).
	Relay *config.Relay
	// Relays are static relays to reserve a slot on and advertise
	// /p2p-circuit addresses through.
	Relays []peer.AddrInfo
	// AutoRelay reserves slots on relays the node meets when it finds
	// itself unreachable.
	AutoRelay bool
	// Reachability is "auto", "private" or "public" (see config.Network).
	Reachability string
	// HolePunching, PortMapping and NATService enable DCUtR hole
	// punching, UPnP/NAT-PMP port mapping and the AutoNAT service.
	HolePunching, PortMapping, NATService bool
	// DHT is the Kademlia DHT mode: "off", "client", "server" or "auto";
	// Bootstrap are its starting peers and DHTPrefix its protocol prefix
	// (default "/p2ptun").
	DHT       string
	Bootstrap []peer.AddrInfo
	DHTPrefix string
	// MDNS announces the node on the LAN and learns LAN peers' addresses.
	MDNS bool
	// PeerCache is a file that caches peers' addresses across restarts
	// (loaded at Start, saved every minute and at Close); "" disables it.
	PeerCache string
	// RTTInterval is how often peers with live streams are pinged for
	// `stream ls`'s RTT; default 10s. They are pinged at least every half
	// of Timeouts.Keepalive too, to find dead ones.
	RTTInterval time.Duration
	// BindForward binds a forward's local address; default manet.Listen.
	BindForward func(ma.Multiaddr) (manet.Listener, error)
	// Metrics, when set, receives p2ptun's metrics (p2ptun_*) and
	// go-libp2p's (libp2p_*, including the resource manager's). Give each
	// node its own registry. nil turns metrics off.
	Metrics prometheus.Registerer
	// Now tells the time for invite expiry; default time.Now.
	Now func() time.Time
}

// Node is a running libp2p host with its tunnels. Create it with New, then
// Start; Close stops every tunnel and the host.
type Node struct {
	opts Options
	log  *slog.Logger

	p2p       *p2phost.Host
	host      host.Host // p2p's libp2p host, once started
	listeners registry.Listeners
	streams   registry.Streams
	limited   *peerlog.Logger // refusals and limits, once per peer per interval
	stop      context.CancelFunc
	bg        sync.WaitGroup // background work: peer events

	started atomic.Value // the host, for metrics collected while it starts

	protectMu sync.Mutex
	protected map[peer.ID]int // live streams per peer, protected from trimming while > 0

	accessMu sync.Mutex     // serialises policy edits and their persistence
	filed    *access.Policy // the policy as the config file has it: opts.Access minus the run-only peers

	// unopenedProbe, set by tests, is told when a keepalive probe could
	// not open its stream.
	unopenedProbe func(peer.ID)

	events  telemetry.Bus      // lifecycle events for subscribers
	metrics *telemetry.Metrics // nil when metrics are off
	tunnels tunnelSet          // config-file tunnels
	bgCtx   context.Context

	invites *invite.Book // single-use invites to the running listeners

	mu     sync.Mutex
	closed bool
}

// New validates opts. It does not touch the network.
func New(opts Options) (*Node, error) {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Access == nil {
		opts.Access = access.New(slices.Concat(opts.Allow, opts.RunAllow), slices.Concat(opts.Deny, opts.RunDeny))
	}
	n := &Node{
		opts: opts, log: opts.Logger, protected: make(map[peer.ID]int),
		filed: access.New(opts.Allow, opts.Deny),
	}
	// The host validates its settings as `config check` does: no value
	// that passes can make the node panic or spin (see
	// p2phost.FuzzConfigBuildsAHost). Timeouts and Limits come back with
	// their defaults filled in, and the host's refusal logger is the
	// node's.
	p, err := p2phost.New(p2phost.Config{
		Key: opts.Key, ListenAddrs: opts.ListenAddrs, Timeouts: opts.Timeouts, UserAgent: opts.UserAgent,
		Logger: opts.Logger, Limits: opts.Limits, Gater: opts.Access,
		ProtocolLimits: map[protocol.ID]p2phost.ProtocolLimit{
			invite.Protocol: {Streams: invite.MaxStreams, PeerStreams: invite.MaxStreamsPerPeer},
		},
		ConnManager: opts.ConnManager, SwarmKey: opts.SwarmKey,
		Relay: opts.Relay, Relays: opts.Relays, AutoRelay: opts.AutoRelay, Reachability: opts.Reachability,
		HolePunching: opts.HolePunching, PortMapping: opts.PortMapping, NATService: opts.NATService,
		DHT: opts.DHT, Bootstrap: opts.Bootstrap, DHTPrefix: opts.DHTPrefix, MDNS: opts.MDNS,
		PeerCache: opts.PeerCache, ActivePeers: n.activePeers, RTTInterval: opts.RTTInterval,
		Metrics: opts.Metrics, UnopenedProbe: func(p peer.ID) {
			if n.unopenedProbe != nil {
				n.unopenedProbe(p)
			}
		},
	})
	if err != nil {
		return nil, err
	}
	hc := p.Config()
	n.p2p, n.limited = p, hc.Limited
	n.opts.Timeouts, n.opts.Limits, n.opts.Relay, n.opts.RTTInterval = hc.Timeouts, hc.Limits, hc.Relay, hc.RTTInterval
	n.invites = invite.New(invite.Config{Now: opts.Now, ReadTimeout: n.opts.Timeouts.StreamOpen.Std(), Logger: n.log, Limited: n.limited})
	if opts.Metrics != nil {
		m := telemetry.NewMetrics(n.streams.List, n.listeners.List, func() int {
			if h, ok := n.started.Load().(host.Host); ok {
				return len(h.Network().Peers())
			}
			return 0
		})
		if err := m.Register(opts.Metrics); err != nil {
			return nil, fmt.Errorf("registering metrics: %w", err)
		}
		n.metrics = m
	}
	n.hooks()
	opts.Access.Refused = func(p peer.ID, dir network.Direction) {
		n.limited.Warn("gater "+p.String(), "refused connection: peer not allowed by the node's access policy", "peer", p.String(), "dir", dir.String())
	}
	return n, nil
}

// Start builds the libp2p host and starts listening on the swarm
// addresses. On error nothing is left listening.
func (n *Node) Start(ctx context.Context) error {
	if err := n.p2p.Start(ctx); err != nil {
		return err
	}
	h := n.p2p.Host()
	n.host = h
	n.started.Store(h)
	h.SetStreamHandler(invite.Protocol, n.invites.Handle)
	bg, stop := context.WithCancel(context.Background())
	n.stop, n.bgCtx = stop, bg
	if sub, err := h.EventBus().Subscribe(new(event.EvtPeerConnectednessChanged)); err != nil {
		n.log.Warn("peer events unavailable", "err", err)
	} else {
		n.bg.Go(func() { n.watchPeers(bg, sub) })
	}
	n.log.Info("node started", "peer", h.ID().String(), "addrs", fmt.Sprint(h.Addrs()))
	return nil
}

// Host returns the libp2p host (nil before Start).
func (n *Node) Host() host.Host { return n.host }

// Close closes every listener and forward (ending their streams), then the
// host. It is idempotent.
func (n *Node) Close() error {
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return nil
	}
	n.closed = true
	n.mu.Unlock()
	if n.stop != nil {
		n.stop()
		n.bg.Wait()
	}
	_, err := n.listeners.CloseMatching(func(*registry.Listener) bool { return true })
	if errors.Is(err, registry.ErrNotFound) {
		err = nil
	}
	err = errors.Join(err, n.p2p.Close())
	n.events.Close()

	// Closing the host ended their streams.
	n.invites.Close()
	n.log.Info("node stopped")
	return err
}

// Drain is the first half of a graceful shutdown: every listener and
// forward stops accepting, and Drain waits until the live streams have
// ended or ctx is done. It returns how many streams were still live then;
// Close resets them.
func (n *Node) Drain(ctx context.Context) int {
	n.listeners.StopAccepting()
	live := len(n.streams.List())
	if live > 0 {
		n.log.Info("draining live streams", "streams", live)
	}
	if n.streams.WaitIdle(ctx) == nil {
		return 0
	}
	return len(n.streams.List())
}

func (n *Node) isClosed() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.closed
}
