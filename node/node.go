package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/event"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/peerstore"
	"github.com/libp2p/go-libp2p/core/pnet"
	"github.com/libp2p/go-libp2p/core/protocol"
	ma "github.com/multiformats/go-multiaddr"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/p2ptun/p2ptun/access"
	"github.com/p2ptun/p2ptun/config"
	"github.com/p2ptun/p2ptun/forward"
	"github.com/p2ptun/p2ptun/listen"
	"github.com/p2ptun/p2ptun/p2phost"
	"github.com/p2ptun/p2ptun/peerlog"
	"github.com/p2ptun/p2ptun/registry"
	"github.com/p2ptun/p2ptun/ticket"
)

// Listener and StreamInfo are the records Listeners and Streams return;
// they are the registry's, named here so that callers above the node need
// not import the registry.
type (
	Listener   = registry.Listener
	StreamInfo = registry.StreamInfo
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

	events  bus       // lifecycle events for subscribers
	metrics *metrics  // nil when metrics are off
	tunnels tunnelSet // config-file tunnels
	bgCtx   context.Context

	invMu   sync.Mutex
	served  map[uint64]*listen.Listener // running listeners, by registry ID
	invites map[[32]byte]*invite        // by SHA-256 of the secret

	handlers sync.WaitGroup // running internal protocol handlers (invites)

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
		filed:  access.New(opts.Allow, opts.Deny),
		served: make(map[uint64]*listen.Listener), invites: make(map[[32]byte]*invite),
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
			// Any peer may present an invite; a legitimate one presents
			// one at a time, so a few open streams each, and a few dozen
			// in all, are plenty.
			InviteProtocol: {Streams: maxInviteStreams, PeerStreams: maxInviteStreamsPerPeer},
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
	if opts.Metrics != nil {
		m, err := nodeMetrics(n, opts.Metrics)
		if err != nil {
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

// Caps on open invite streams, node-wide and per peer.
const (
	maxInviteStreams        = 64
	maxInviteStreamsPerPeer = 2
)

// Start builds the libp2p host and starts listening on the swarm
// addresses. On error nothing is left listening.
func (n *Node) Start(ctx context.Context) error {
	if err := n.p2p.Start(ctx); err != nil {
		return err
	}
	h := n.p2p.Host()
	n.host = h
	n.started.Store(h)
	h.SetStreamHandler(InviteProtocol, n.handleInvite)
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
	n.closeSubscribers()

	// Closing the host ended their streams.
	n.handlers.Wait()
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

// Identity is what `p2ptun id` prints; field names follow kubo's `ipfs id`.
type Identity struct {
	ID           string
	Addresses    []string
	AgentVersion string
}

// Identity returns the node's peer ID and its dialable addresses, each
// ending in /p2p/<ID>.
func (n *Node) Identity() Identity {
	id := n.host.ID()
	suffix := "/p2p/" + id.String()
	addrs := make([]string, 0, len(n.host.Addrs()))
	for _, a := range n.host.Addrs() {
		addrs = append(addrs, a.String()+suffix)
	}
	slices.Sort(addrs)
	return Identity{ID: id.String(), Addresses: addrs, AgentVersion: n.opts.UserAgent}
}

// ListenRequest asks the node to serve a protocol by dialing a local target.
type ListenRequest struct {
	// Name labels the tunnel in `ls`, events and metrics; optional.
	Name                string `json:",omitempty"`
	Protocol            string
	Target              string
	Allow               []string `json:",omitempty"`
	AllowAll            bool     `json:",omitempty"`
	ReportPeerID        bool     `json:",omitempty"`
	AllowCustomProtocol bool     `json:",omitempty"`
	// InviteOnly lets Allow be empty: peers join the allowlist by
	// redeeming invites (Share with Invite).
	InviteOnly bool `json:",omitempty"`
	// Save also appends the tunnel to the config file, so the daemon
	// starts it at boot and a reload keeps it.
	Save bool `json:",omitempty"`
}

// Listen registers a protocol handler. On error nothing is registered (and,
// with r.Save, nothing is saved).
func (n *Node) Listen(ctx context.Context, r ListenRequest) (registry.Listener, error) {
	if !r.Save {
		return n.listen(ctx, r)
	}
	t := config.ListenTunnel{
		Name: r.Name, Protocol: r.Protocol, Target: r.Target, Allow: r.Allow, AllowAll: r.AllowAll,
		InviteOnly: r.InviteOnly, ReportPeerID: r.ReportPeerID, AllowCustomProtocol: r.AllowCustomProtocol,
	}
	s := listenSpec(t)
	return n.saved(n.opts.SaveListen != nil,
		func() (registry.Listener, error) { return n.listen(ctx, *s.listen) },
		func(registry.Listener) (spec, func() error) { return s, func() error { return n.opts.SaveListen(t) } })
}

// saved starts a tunnel with start; record says, from what started, which
// config tunnel it is and how to save it. It is recorded as that tunnel
// and saved; if saving fails, the tunnel is closed again.
func (n *Node) saved(canSave bool, start func() (registry.Listener, error), record func(registry.Listener) (spec, func() error)) (registry.Listener, error) {
	if !canSave {
		return registry.Listener{}, fmt.Errorf("%w: --save needs a daemon with a config file; this one is --ephemeral", ErrUsage)
	}
	n.tunnels.applyMu.Lock()
	defer n.tunnels.applyMu.Unlock()
	l, err := start()
	if err != nil {
		return l, err
	}
	s, save := record(l)
	n.adopt(s, l.ID)
	if err := save(); err != nil {
		n.disown(s)
		_, _ = n.listeners.CloseMatching(func(x *registry.Listener) bool { return x.ID == l.ID })
		return registry.Listener{}, fmt.Errorf("tunnel not saved, and closed again: %w", err)
	}
	return l, nil
}

func (n *Node) listen(ctx context.Context, r ListenRequest) (registry.Listener, error) {
	if n.isClosed() {
		return registry.Listener{}, ErrClosed
	}
	proto, err := ParseProtocol(r.Protocol, r.AllowCustomProtocol)
	if err != nil {
		return registry.Listener{}, err
	}
	target, err := ParseTarget(r.Target)
	if err != nil {
		return registry.Listener{}, err
	}
	allow := make([]peer.ID, 0, len(r.Allow))
	allowStr := make([]string, 0, len(r.Allow))
	for _, s := range r.Allow {
		id, err := ParsePeer(s)
		if err != nil {
			return registry.Listener{}, err
		}
		if !slices.Contains(allow, id) {
			allow = append(allow, id)
			allowStr = append(allowStr, id.String())
		}
	}
	if r.InviteOnly && r.AllowAll {
		return registry.Listener{}, fmt.Errorf("%w: --invite-only and --allow-all contradict each other: choose one", ErrUsage)
	}
	if !r.AllowAll && len(allow) == 0 && !r.InviteOnly {
		return registry.Listener{}, fmt.Errorf("%w: %w", ErrUsage, listen.ErrNoAllowlist)
	}

	rec := &registry.Listener{
		Name:          r.Name,
		Kind:          registry.KindListen,
		Protocol:      string(proto),
		ListenAddress: "/p2p/" + n.host.ID().String(),
		TargetAddress: target.String(),
		AllowedPeers:  allowStr,
		AllowAll:      r.AllowAll,
		InviteOnly:    r.InviteOnly,
		ReportPeerID:  r.ReportPeerID,
	}
	if err := n.listeners.Reserve(rec); err != nil {
		return registry.Listener{}, err
	}
	l, err := listen.New(n.host, listen.Config{
		Protocol:     proto,
		Target:       target,
		Allow:        allow,
		AllowAll:     r.AllowAll,
		InviteOnly:   r.InviteOnly,
		ReportPeerID: r.ReportPeerID,
		DialTimeout:  n.opts.Timeouts.TargetDial.Std(),
		PeerRate:     n.opts.Limits.PeerStreamRate,
		PeerBurst:    n.opts.Limits.PeerStreamBurst,
		Limited:      n.limited,
		Logger:       n.log,
		Streams:      &n.streams,
		ListenerID:   rec.ID,
	})
	if err == nil {
		err = l.Start(ctx)
	}
	if err != nil {
		n.listeners.Release(rec)
		if l != nil {
			_ = l.Close()
		}
		return registry.Listener{}, err
	}
	rec.Close, rec.StopAccepting = n.serve(rec.ID, l), l.StopAccepting
	n.listeners.Commit(rec)
	n.log.Info("listener opened", "proto", rec.Protocol, "target", rec.TargetAddress, "allow", allowStr, "allow_all", r.AllowAll, "invite_only", r.InviteOnly)
	return snapshot(rec), nil
}

// ForwardRequest asks the node to bind a local address and forward each
// connection to a peer's protocol.
type ForwardRequest struct {
	// Name labels the tunnel in `ls`, events and metrics; optional.
	Name                string `json:",omitempty"`
	Protocol            string
	ListenAddress       string
	Peer                string
	AllowCustomProtocol bool `json:",omitempty"`
	// Lazy skips connecting to the peer now; the first client connection
	// will. By default Forward fails if the peer cannot be reached.
	Lazy bool `json:",omitempty"`
	// AllowLimited lets the forward use relayed connections that the relay
	// limits in time or data.
	AllowLimited bool `json:",omitempty"`
	// Save also appends the tunnel to the config file.
	Save bool `json:",omitempty"`

	// Addrs are more addresses of Peer (multiaddrs, with or without
	// /p2p/ID), as a ticket lists them.
	Addrs []string `json:",omitempty"`
	// Invite is an invite's secret, presented to the peer after connecting
	// and before anything is bound; a refused invite fails the forward
	// with ErrDenied. It cannot be Lazy.
	Invite []byte `json:",omitempty"`
}

// Forward binds a local listener whose connections become streams to the
// peer. Unless r.Lazy, it first connects to the peer and fails with
// ErrUnreachable if it cannot. On error nothing is bound or registered.
func (n *Node) Forward(ctx context.Context, r ForwardRequest) (registry.Listener, error) {
	if !r.Save {
		return n.forward(ctx, r)
	}
	// The table keeps the peer and its addresses but never an invite's
	// secret: once redeemed, the peer is on the listener's allowlist.
	t := config.ForwardTunnel{
		Name: r.Name, Protocol: r.Protocol, Listen: r.ListenAddress, Peer: r.Peer, Addrs: r.Addrs, Lazy: r.Lazy,
		AllowLimited: r.AllowLimited, AllowCustomProtocol: r.AllowCustomProtocol,
	}
	return n.saved(n.opts.SaveForward != nil,
		func() (registry.Listener, error) {
			req := *forwardSpec(t).fwd
			req.Invite = r.Invite
			return n.forward(ctx, req)
		},
		func(l registry.Listener) (spec, func() error) {
			// Port 0 is saved as the port it got, so that a restart or a
			// reload binds the same one.
			t.Listen = boundListen(t.Listen, l.ListenAddress)
			return forwardSpec(t), func() error { return n.opts.SaveForward(t) }
		})
}

func (n *Node) forward(ctx context.Context, r ForwardRequest) (registry.Listener, error) {
	if n.isClosed() {
		return registry.Listener{}, ErrClosed
	}
	proto, err := ParseProtocol(r.Protocol, r.AllowCustomProtocol)
	if err != nil {
		return registry.Listener{}, err
	}
	laddr, err := ParseListenAddr(r.ListenAddress)
	if err != nil {
		return registry.Listener{}, err
	}
	pi, err := ParsePeerAddr(r.Peer)
	if err != nil {
		return registry.Listener{}, err
	}
	if pi.ID == n.host.ID() {
		return registry.Listener{}, fmt.Errorf("%w: %s is this node's own peer ID; forward to another peer", ErrUsage, pi.ID)
	}
	if pi, err = withAddrs(pi, r.Addrs); err != nil {
		return registry.Listener{}, err
	}
	if len(r.Invite) > 0 {
		if len(r.Invite) < ticket.MinSecretLen || len(r.Invite) > ticket.MaxSecretLen {
			return registry.Listener{}, fmt.Errorf("%w: an invite secret is %d to %d bytes, not %d", ErrUsage, ticket.MinSecretLen, ticket.MaxSecretLen, len(r.Invite))
		}
		if r.Lazy {
			return registry.Listener{}, fmt.Errorf("%w: an invite is presented when the forward opens, so the forward cannot be --lazy; drop --lazy", ErrUsage)
		}
	}
	if !n.opts.Access.Allowed(pi.ID) {
		return registry.Listener{}, fmt.Errorf("%w: peer %s is refused by this node's access policy; see `p2ptun access ls`, or run `p2ptun access allow %s`", ErrDenied, pi.ID, pi.ID)
	}
	n.addAddrs(pi)
	if !r.Lazy {
		if err := n.connect(ctx, pi.ID); err != nil {
			if viaRelay(pi) {
				err = fmt.Errorf("%w; through a relay, both peers must be on the relay's allow list and %s must hold a reservation on it (it logs \"relay reservation held\")", err, pi.ID)
			}
			return registry.Listener{}, err
		}
	}
	if len(r.Invite) > 0 {
		if err := n.presentInvite(ctx, pi.ID, r.Invite, r.AllowLimited); err != nil {
			return registry.Listener{}, err
		}
	}

	f, err := forward.New(n.host, forward.Config{
		Protocol:          proto,
		ListenAddr:        laddr,
		Peer:              pi.ID,
		DialTimeout:       n.opts.Timeouts.Dial.Std(),
		StreamOpenTimeout: n.opts.Timeouts.StreamOpen.Std(),
		AllowLimited:      r.AllowLimited,
		Logger:            n.log,
		Limited:           n.limited,
		Streams:           &n.streams,
	})
	if err != nil {
		return registry.Listener{}, err
	}
	if err := f.Start(ctx); err != nil {
		_ = f.Close()
		if errors.Is(err, syscall.EADDRINUSE) {
			return registry.Listener{}, fmt.Errorf("%w: %s: pick another port, or 0 for a free one", ErrAddrInUse, laddr)
		}
		return registry.Listener{}, fmt.Errorf("binding %s: %w", laddr, err)
	}
	rec := &registry.Listener{
		Name:          r.Name,
		Kind:          registry.KindForward,
		Protocol:      string(proto),
		ListenAddress: f.Addr().String(),
		TargetAddress: "/p2p/" + pi.ID.String(),
		Peer:          pi.ID.String(),
		Close:         f.Close,
		StopAccepting: f.StopAccepting,
	}
	if err := n.listeners.Reserve(rec); err != nil {
		_ = f.Close()
		return registry.Listener{}, err
	}
	f.SetListenerID(rec.ID)
	n.listeners.Commit(rec)
	n.log.Info("forward opened", "proto", rec.Protocol, "laddr", rec.ListenAddress, "peer", rec.Peer)
	return snapshot(rec), nil
}

// withAddrs adds addrs, multiaddrs of pi's peer with or without /p2p/ID,
// to pi.
func withAddrs(pi peer.AddrInfo, addrs []string) (peer.AddrInfo, error) {
	if len(addrs) > ticket.MaxAddrs {
		return pi, fmt.Errorf("%w: %d peer addresses, more than %d", ErrUsage, len(addrs), ticket.MaxAddrs)
	}
	pi.Addrs = slices.Clone(pi.Addrs)
	for _, s := range addrs {
		m, err := ma.NewMultiaddr(s)
		if err != nil {
			return pi, fmt.Errorf("%w: peer address %q is not a valid multiaddr (%s)", ErrUsage, s, forward.OneLine(err))
		}
		transport, id := peer.SplitAddr(m)
		if id != "" && id != pi.ID {
			return pi, fmt.Errorf("%w: peer address %s is for peer %s, not %s", ErrUsage, m, id, pi.ID)
		}
		if len(transport) == 0 {
			return pi, fmt.Errorf("%w: peer address %s has no transport, like /ip4/HOST/tcp/PORT", ErrUsage, m)
		}
		pi.Addrs = append(pi.Addrs, transport)
	}
	return pi, nil
}

// viaRelay reports whether the user addressed the peer through a relay.
func viaRelay(pi peer.AddrInfo) bool {
	for _, a := range pi.Addrs {
		if _, err := a.ValueForProtocol(ma.P_CIRCUIT); err == nil {
			return true
		}
	}
	return false
}

// addAddrs remembers the addresses a user gave for a peer.
func (n *Node) addAddrs(pi peer.AddrInfo) {
	if len(pi.Addrs) > 0 {
		n.host.Peerstore().AddAddrs(pi.ID, pi.Addrs, peerstore.PermanentAddrTTL)
	}
}

// connect dials p unless connected, with the configured timeout, and says
// what to try when it cannot.
func (n *Node) connect(ctx context.Context, p peer.ID) error {
	if err := forward.Connect(ctx, n.host, p, n.opts.Timeouts.Dial.Std()); err != nil {
		if errors.Is(err, ErrDenied) {
			return err // the peer answered: it refuses this node
		}
		return fmt.Errorf("%w (is its daemon running? pass a full address like /ip4/HOST/tcp/PORT/p2p/%s, or --lazy to connect on first use)", err, p)
	}
	return nil
}

// CloseRequest selects listeners to close. Exactly one field must be set.
type CloseRequest struct {
	All           bool   `json:",omitempty"`
	Protocol      string `json:",omitempty"`
	ListenAddress string `json:",omitempty"`
	TargetAddress string `json:",omitempty"`
}

// CloseListeners closes the listeners that r selects, and their streams. It returns
// how many it closed, or ErrNotFound when none matched.
func (n *Node) CloseListeners(_ context.Context, r CloseRequest) (int, error) {
	set := 0
	for _, b := range []bool{r.All, r.Protocol != "", r.ListenAddress != "", r.TargetAddress != ""} {
		if b {
			set++
		}
	}
	if set != 1 {
		return 0, fmt.Errorf("%w: choose exactly one of -a, -p PROTO, -l LISTEN-ADDR, -t TARGET", ErrUsage)
	}
	match := func(*registry.Listener) bool { return true }
	switch {
	case r.Protocol != "":
		match = func(l *registry.Listener) bool { return l.Protocol == r.Protocol }
	case r.ListenAddress != "":
		want, err := canonicalAddr(r.ListenAddress)
		if err != nil {
			return 0, err
		}
		match = func(l *registry.Listener) bool { return l.ListenAddress == want }
	case r.TargetAddress != "":
		want, err := canonicalAddr(r.TargetAddress)
		if err != nil {
			return 0, err
		}
		match = func(l *registry.Listener) bool { return l.TargetAddress == want }
	}
	count, err := n.listeners.CloseMatching(match)
	if err == nil {
		n.log.Info("listeners closed", "count", count)
	}
	return count, err
}

func canonicalAddr(s string) (string, error) {
	m, err := ParseAddr(s)
	if err != nil {
		return "", err
	}
	return m.String(), nil
}

// Listeners lists the listeners and forwards in the order they were opened.
func (n *Node) Listeners() []registry.Listener { return n.listeners.List() }

// Streams lists the live streams in the order they were opened.
func (n *Node) Streams() []registry.StreamInfo { return n.streams.List() }

// CloseStream aborts one stream and waits for it to end.
func (n *Node) CloseStream(ctx context.Context, id uint64) error {
	return n.streams.Close(ctx, id)
}

// CloseAllStreams aborts every live stream and waits for them to end.
func (n *Node) CloseAllStreams(ctx context.Context) (int, error) {
	return n.streams.CloseMatching(ctx, func(*registry.Stream) bool { return true })
}

func snapshot(l *registry.Listener) registry.Listener {
	c := *l
	c.AllowedPeers = slices.Clone(l.AllowedPeers)
	c.Close = nil
	return c
}
