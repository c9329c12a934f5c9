package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/event"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"

	"github.com/p2ptun/p2ptun/access"
	"github.com/p2ptun/p2ptun/config"
	"github.com/p2ptun/p2ptun/invite"
	"github.com/p2ptun/p2ptun/p2phost"
	"github.com/p2ptun/p2ptun/peerlog"
	"github.com/p2ptun/p2ptun/reconcile"
	"github.com/p2ptun/p2ptun/registry"
	"github.com/p2ptun/p2ptun/telemetry"
)

// Options configures a Node. The embedded p2phost.Config says how to
// build its host (Key and ListenAddrs are required; Timeouts, Limits,
// Logger and Metrics serve the node too); the node sets the host's Gater
// (Access) and KeepalivePeers (a forward's peers that are up) itself, and
// adds the invite protocol's caps to ProtocolLimits.
type Options struct {
	p2phost.Config
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
	// BindForward binds a forward's local address; default manet.Listen.
	BindForward func(ma.Multiaddr) (manet.Listener, error)
	// Now tells the time for invite expiry and for the listeners' stream
	// rates; default time.Now.
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

	access *access.Store // runtime edits of opts.Access

	events  telemetry.Bus      // lifecycle events for subscribers
	metrics *telemetry.Metrics // nil when metrics are off
	tunnels *reconcile.Set     // config-file tunnels

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
	n := &Node{opts: opts, log: opts.Logger}
	// The host validates its settings as `config check` does: no value
	// that passes can make the node panic or spin (see
	// p2phost.FuzzConfigBuildsAHost). Timeouts and Limits come back with
	// their defaults filled in, and the host's refusal logger is the
	// node's.
	hc := opts.Config
	hc.Gater, hc.KeepalivePeers = opts.Access, n.activePeers
	hc.Reservation, hc.HolePunch = n.events.Reservation, n.events.HolePunched
	hc.ProtocolLimits = maps.Clone(hc.ProtocolLimits)
	if hc.ProtocolLimits == nil {
		hc.ProtocolLimits = make(map[protocol.ID]p2phost.ProtocolLimit)
	}
	hc.ProtocolLimits[invite.Protocol] = p2phost.ProtocolLimit{Streams: invite.MaxStreams, PeerStreams: invite.MaxStreamsPerPeer}
	p, err := p2phost.New(hc)
	if err != nil {
		return nil, err
	}
	n.p2p, n.opts.Config = p, p.Config()
	self, err := peer.IDFromPrivateKey(n.opts.Key) // p2phost checked the key
	if err != nil {
		return nil, fmt.Errorf("%w: identity key: %w", ErrUsage, err)
	}
	n.access = n.newAccess(self)
	n.limited = n.opts.Limited
	n.invites = invite.New(invite.Config{Now: opts.Now, ReadTimeout: n.opts.Timeouts.StreamOpen.Std(), Logger: n.log, Limited: n.limited})
	if opts.Metrics != nil {
		m := telemetry.NewMetrics(n.streams.List, n.listeners.List, func() int {
			if h := n.p2p.Host(); h != nil {
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
	n.tunnels = n.newTunnels()
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
	h.SetStreamHandler(invite.Protocol, n.invites.Handle)
	bg, stop := context.WithCancel(context.Background())
	n.stop = stop
	if sub, err := h.EventBus().Subscribe(new(event.EvtPeerConnectednessChanged)); err != nil {
		n.log.Warn("peer events unavailable", "err", err)
	} else {
		n.bg.Go(func() { n.events.WatchPeers(bg, sub, n.path) })
	}
	n.log.Info("node started", "peer", h.ID().String(), "addrs", multiaddrStrings(h.Addrs()))
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
	n.tunnels.Close()
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

// multiaddrStrings is addrs as strings, which a JSON log writes as an
// array of addresses (fmt.Sprint would make them one string).
func multiaddrStrings(addrs []ma.Multiaddr) []string {
	out := make([]string, len(addrs))
	for i, a := range addrs {
		out[i] = a.String()
	}
	return out
}
