package p2phost

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/libp2p/go-libp2p"
	dht "github.com/libp2p/go-libp2p-kad-dht"
	"github.com/libp2p/go-libp2p/core/connmgr"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/pnet"
	"github.com/libp2p/go-libp2p/core/protocol"
	ma "github.com/multiformats/go-multiaddr"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/p2ptun/p2ptun/config"
	"github.com/p2ptun/p2ptun/p2phost/keepalive"
	"github.com/p2ptun/p2ptun/p2phost/limits"
	"github.com/p2ptun/p2ptun/peerlog"
)

// Config says how to build the host. Key and ListenAddrs (or Relays) are
// required; New validates the rest.
type Config struct {
	// Key is the host's identity.
	Key crypto.PrivKey
	// ListenAddrs are the swarm's listen addresses.
	ListenAddrs []ma.Multiaddr
	// Timeouts bound dials (Dial), handshakes (Handshake), pings
	// (StreamOpen) and the keepalive (Keepalive); zero fields take the
	// config package's defaults.
	Timeouts config.Timeouts
	// UserAgent is announced to peers through identify.
	UserAgent string
	// Logger is used for lifecycle events; default slog.Default().
	Logger *slog.Logger
	// Limited logs refusals and limits once per peer per interval; default
	// a peerlog.Logger on Logger with Limits.LogInterval.
	Limited *peerlog.Logger
	// Limits caps connections, streams and memory; zero fields take the
	// config package's defaults.
	Limits config.Limits
	// ProtocolLimits caps the open streams of particular protocols (the
	// caller's own, like invites): node-wide and per peer.
	ProtocolLimits map[protocol.ID]ProtocolLimit
	// Gater is the node-wide access policy; nil admits every peer.
	Gater connmgr.ConnectionGater
	// ConnManager sets the connection manager's water marks.
	ConnManager ConnManager
	// SwarmKey makes the host part of a private network; only TCP and
	// WebSocket addresses are allowed with it.
	SwarmKey pnet.PSK
	// Relay, when set, makes the host a circuit relay v2 service for the
	// peers it allows.
	Relay *config.Relay
	// Relays are static relays to reserve a slot on and advertise
	// /p2p-circuit addresses through.
	Relays []peer.AddrInfo
	// AutoRelay reserves slots on relays the host meets when it finds
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
	// MDNS announces the host on the LAN and learns LAN peers' addresses.
	MDNS bool
	// PeerCache is a file that caches peers' addresses across restarts
	// (loaded at Start, saved every minute and at Close); "" disables it.
	PeerCache string
	// KeepalivePeers lists the peers the keepalive watches besides those
	// with live tunnel streams (TunnelOpened), once a round: keep it
	// cheap; nil adds none.
	KeepalivePeers func() []peer.ID
	// RTTInterval is how often the watched peers are pinged for their RTT;
	// default 10s. They are pinged at least every half of
	// Timeouts.Keepalive too, to find dead ones.
	RTTInterval time.Duration
	// Metrics, when set, receives go-libp2p's metrics (libp2p_*, including
	// the resource manager's). nil turns them off.
	Metrics prometheus.Registerer
	// UnopenedProbe, when set (by tests), is told when a keepalive probe
	// could not open its stream.
	UnopenedProbe func(peer.ID)
	// Reservation, when set, is told when one of Relays starts holding a
	// reservation for this host (err nil) and when it stops (err says
	// why), not at each refresh. It must not block.
	Reservation func(relay peer.ID, err error)
	// HolePunch, when set, is told how each attempt to hole-punch a
	// direct connection to remote (over a relayed one) ended: err nil
	// for a direct connection. It must not block.
	HolePunch func(remote peer.ID, took time.Duration, err error)
}

// ProtocolLimit caps one protocol's open streams.
type ProtocolLimit = limits.Protocol

// ConnManager holds the connection manager's water marks: past High
// connections it closes those of the least useful unprotected peers, down
// to Low, sparing connections younger than GracePeriod. Zero fields take
// go-libp2p's defaults (160, 192, one minute).
type ConnManager struct {
	Low, High   int
	GracePeriod time.Duration
}

// Host is a libp2p host with p2ptun's background work: the keepalive,
// relay reservations, the DHT, mDNS and the peer cache. Create it with
// New, then Start; Close stops it.
type Host struct {
	cfg     Config
	log     *slog.Logger
	limited *peerlog.Logger

	host    host.Host
	started atomic.Value // the host, for callbacks that libp2p.New starts before it returns
	dht     *dht.IpfsDHT // set by the routing constructor when the DHT is on
	mdns    io.Closer    // the mDNS service, when on
	cache   map[string][]string

	stop context.CancelFunc
	bg   sync.WaitGroup // keepalive, peer cache, relay reservations, DHT bootstrap

	relayMu  sync.Mutex
	reserved map[peer.ID]bool // relays holding a reservation for us

	tunnels tunnelPeers // protected from trimming, watched by the keepalive
}

// New validates cfg. It does not touch the network.
func New(cfg Config) (*Host, error) {
	if cfg.Key == nil {
		return nil, errors.New("p2phost: no identity key")
	}
	if len(cfg.ListenAddrs) == 0 && len(cfg.Relays) == 0 {
		return nil, errors.New("p2phost: no listen addresses and no relays: the host could not be reached")
	}
	if cfg.RTTInterval <= 0 {
		cfg.RTTInterval = 10 * time.Second
	}
	// The same validation as `config check`: no value that passes it can
	// make the host panic or spin.
	if err := cfg.Timeouts.Validate(); err != nil {
		return nil, fmt.Errorf("%w: %w", config.ErrInvalid, err)
	}
	if err := cfg.Limits.Validate(); err != nil {
		return nil, fmt.Errorf("%w: %w", config.ErrInvalid, err)
	}
	if cfg.Relay != nil {
		r := *cfg.Relay
		if err := r.Validate(); err != nil {
			return nil, fmt.Errorf("%w: %w", config.ErrInvalid, err)
		}
		cfg.Relay = &r
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Limited == nil {
		cfg.Limited = peerlog.New(cfg.Logger, cfg.Limits.LogInterval.Std(), nil)
	}
	if cfg.SwarmKey != nil {
		for _, a := range cfg.ListenAddrs {
			if !privateNetworkCapable(a) {
				return nil, fmt.Errorf("%w: listen address %s cannot carry a swarm key (private networks work over TCP and WebSocket only): remove it from network.listen_addrs or --listen-addr", config.ErrInvalid, a)
			}
		}
	}
	for _, a := range cfg.ListenAddrs {
		if err := config.CheckSwarmAddr(a); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrUsage, err)
		}
	}
	if err := cfg.ConnManager.validate(); err != nil {
		return nil, err
	}
	return &Host{cfg: cfg, log: cfg.Logger, limited: cfg.Limited, reserved: make(map[peer.ID]bool),
		tunnels: tunnelPeers{live: make(map[peer.ID]int)}}, nil
}

// Config returns the validated config, defaults filled in.
func (h *Host) Config() Config { return h.cfg }

// Start builds the libp2p host and starts listening on the swarm
// addresses, then the background work. On error nothing is left
// listening.
func (h *Host) Start(context.Context) error {
	if err := probeListenAddrs(h.cfg.ListenAddrs); err != nil {
		return err
	}
	rm, err := h.resourceManager()
	if err != nil {
		return fmt.Errorf("resource manager: %w", err)
	}
	opts := []libp2p.Option{
		libp2p.Identity(h.cfg.Key),
		libp2p.ListenAddrs(h.cfg.ListenAddrs...),
		libp2p.UserAgent(h.cfg.UserAgent),
		libp2p.WithDialTimeout(h.cfg.Timeouts.Dial.Std()),
		libp2p.ResourceManager(rm),
		handshakeTimeout(h.cfg.Timeouts.Handshake.Std()),
	}
	if h.cfg.Gater != nil {
		opts = append(opts, libp2p.ConnectionGater(h.cfg.Gater))
	}
	opts = append(opts, h.transports()...)
	opts = append(opts, h.muxer(), h.metrics())
	opts = append(opts, h.nat()...)
	dhtOpt, err := h.dhtOption()
	if err != nil {
		rm.Close()
		return err
	}
	if dhtOpt != nil {
		opts = append(opts, dhtOpt)
	}
	relayOpts, err := h.relayOptions()
	if err != nil {
		rm.Close()
		return err
	}
	opts = append(opts, relayOpts...)
	// The connection manager runs a goroutine from its birth: make it
	// last, and close it if the host does not start.
	cm, err := h.connManager()
	if err != nil {
		rm.Close()
		return err
	}
	opts = append(opts, libp2p.ConnectionManager(cm))
	lh, err := libp2p.New(opts...)
	if err != nil {
		if h.dht != nil {
			h.dht.Close()
			h.dht = nil
		}
		cm.Close()
		rm.Close()
		if errors.Is(err, syscall.EADDRINUSE) {
			return fmt.Errorf("%w: swarm listen address: %w (another p2ptun or kubo daemon? pass --listen-addr with another port)", ErrAddrInUse, err)
		}
		return fmt.Errorf("starting libp2p host: %w", err)
	}
	h.host = lh
	h.started.Store(lh)
	ctx, stop := context.WithCancel(context.Background())
	h.stop = stop
	ka := h.keepaliveConfig()
	h.bg.Go(func() { keepalive.Run(ctx, ka) })
	if h.cfg.PeerCache != "" {
		h.loadPeerCache()
		h.bg.Go(func() { h.keepPeerCache(ctx, time.Minute) })
	}
	h.bootstrapDHT(ctx)
	if h.cfg.MDNS {
		if err := h.startMDNS(); err != nil {
			h.log.Warn("mDNS discovery did not start; LAN peers need addresses", "err", err)
		}
	}
	for _, ri := range h.cfg.Relays {
		h.bg.Go(func() { h.keepReservation(ctx, ri) })
	}
	return nil
}

// Host returns the libp2p host (nil before Start). It is safe to call
// while Start runs (metrics are collected at any time).
func (h *Host) Host() host.Host {
	lh, _ := h.started.Load().(host.Host)
	return lh
}

// Close stops the background work, saves the peer cache, and closes mDNS,
// the DHT and the host. It may be called once, after Start or not.
func (h *Host) Close() error {
	if h.stop != nil {
		h.stop()
		h.bg.Wait()
	}
	if h.host != nil && h.cfg.PeerCache != "" {
		h.savePeerCache()
	}
	var err error
	if h.mdns != nil {
		err = errors.Join(err, h.mdns.Close())
	}
	if h.dht != nil {
		err = errors.Join(err, h.dht.Close())
	}
	if h.host != nil {
		err = errors.Join(err, h.host.Close())
	}
	return err
}

// privateNetworkCapable reports whether a is a TCP or WebSocket address,
// the transports that go-libp2p's pre-shared key protects.
func privateNetworkCapable(a ma.Multiaddr) bool {
	for _, c := range a {
		switch c.Code() {
		case ma.P_UDP, ma.P_QUIC, ma.P_QUIC_V1, ma.P_WEBTRANSPORT, ma.P_WEBRTC, ma.P_WEBRTC_DIRECT, ma.P_CIRCUIT:
			return false
		}
	}
	return true
}

// DHT returns the Kademlia DHT, or nil when it is off or before Start.
func (h *Host) DHT() *dht.IpfsDHT { return h.dht }
