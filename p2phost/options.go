package p2phost

import (
	"fmt"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/connmgr"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/pnet"
	"github.com/libp2p/go-libp2p/core/sec"
	"github.com/libp2p/go-libp2p/core/transport"
	"github.com/libp2p/go-libp2p/p2p/muxer/yamux"
	basicconnmgr "github.com/libp2p/go-libp2p/p2p/net/connmgr"
	"github.com/libp2p/go-libp2p/p2p/net/swarm"
	tptu "github.com/libp2p/go-libp2p/p2p/net/upgrader"
	quic "github.com/libp2p/go-libp2p/p2p/transport/quic"
	"github.com/libp2p/go-libp2p/p2p/transport/tcp"
	ws "github.com/libp2p/go-libp2p/p2p/transport/websocket"
	"go.uber.org/fx"

	"github.com/p2ptun/p2ptun/p2phost/limits"
	"github.com/p2ptun/p2ptun/streams"
)

// One small constructor per concern, in the manner of kubo's
// core/node/libp2p: each returns the go-libp2p options for its part.

// transports are TCP and WebSocket, QUIC unless a swarm key makes the
// network private (go-libp2p's pre-shared key protects TCP and WebSocket
// only), and the circuit relay v2 client (dial and accept /p2p-circuit);
// dials try TCP first (preferTCP).
func (h *Host) transports() []libp2p.Option {
	opts := []libp2p.Option{
		libp2p.Transport(tcp.NewTCPTransport),
		libp2p.Transport(ws.New),
		libp2p.EnableRelay(),
		libp2p.SwarmOpts(swarm.WithDialRanker(preferTCP)),
	}
	opts = append(opts, h.security())
	if h.cfg.SwarmKey == nil {
		opts = append(opts, libp2p.Transport(quic.NewTransport))
	}
	if len(h.cfg.ListenAddrs) == 0 {
		opts = append(opts, libp2p.NoListenAddrs)
	}
	return opts
}

// security is go-libp2p's default (TLS and Noise), inside the swarm key's
// private network when there is one.
func (h *Host) security() libp2p.Option {
	if h.cfg.SwarmKey != nil {
		return libp2p.PrivateNetwork(h.cfg.SwarmKey)
	}
	return libp2p.DefaultSecurity
}

// muxer is go-libp2p's yamux with the keepalive: a TCP connection that
// sends nothing back for half of timeouts.keepalive is pinged, and closed
// if the ping (or any write) takes longer than the other half. It sends
// frames of up to streams.FrameSize, the size of a bulk read in a tunnel,
// and grows a stream's window up to limits.MaxStreamWindow.
func (h *Host) muxer() libp2p.Option { return libp2p.Muxer(yamux.ID, h.yamux()) }

func (h *Host) yamux() *yamux.Transport {
	t := *yamux.DefaultTransport
	_, half := h.keepaliveTimes()
	t.KeepAliveInterval, t.ConnectionWriteTimeout = half, half
	t.MaxMessageSize = streams.FrameSize
	t.MaxStreamWindowSize = limits.MaxStreamWindow
	return &t
}

// metrics registers go-libp2p's metrics with cfg.Metrics, or turns them
// off (otherwise go-libp2p would register with the global registry).
func (h *Host) metrics() libp2p.Option {
	if h.cfg.Metrics != nil {
		return libp2p.PrometheusRegisterer(h.cfg.Metrics)
	}
	return libp2p.DisableMetrics()
}

// nat is hole punching, port mapping and the AutoNAT service, each when
// asked for.
func (h *Host) nat() []libp2p.Option {
	var opts []libp2p.Option
	if h.cfg.HolePunching {
		opts = append(opts, libp2p.EnableHolePunching(h.holePunchOptions()...))
	}
	if h.cfg.PortMapping {
		opts = append(opts, libp2p.NATPortMap())
	}
	if h.cfg.NATService {
		opts = append(opts, libp2p.EnableNATService())
	}
	return opts
}

// resourceManager is go-libp2p's resource manager with the config's limits
// (see limits.NewResourceManager).
func (h *Host) resourceManager() (network.ResourceManager, error) {
	return limits.NewResourceManager(h.cfg.Limits, h.cfg.ProtocolLimits, h.limited, h.cfg.Metrics != nil)
}

// connManager is go-libp2p's basic connection manager with cfg's water
// marks. It never trims a peer that someone protects
// (ConnManager().Protect): the host protects peers with live tunnels
// (TunnelOpened).
func (h *Host) connManager() (*basicconnmgr.BasicConnMgr, error) {
	c := h.cfg.ConnManager
	cm, err := basicconnmgr.NewConnManager(c.Low, c.High, basicconnmgr.WithGracePeriod(c.GracePeriod))
	if err != nil {
		return nil, fmt.Errorf("connection manager: %w", err)
	}
	return cm, nil
}

// validate fills in ConnManager's defaults and checks it.
func (c *ConnManager) validate() error {
	if c.Low == 0 {
		c.Low = 160
	}
	if c.High == 0 {
		c.High = max(192, c.Low)
	}
	if c.GracePeriod == 0 {
		c.GracePeriod = time.Minute
	}
	if c.Low < 0 || c.High < c.Low || c.GracePeriod < 0 {
		return fmt.Errorf("%w: connection manager: low water %d, high water %d, grace period %v: want 0 <= low <= high and a grace period >= 0", ErrUsage, c.Low, c.High, c.GracePeriod)
	}
	return nil
}

// handshakeTimeout gives an inbound TCP or WebSocket connection d, rather
// than go-libp2p's 15s, from accept to a negotiated muxer: until then it
// is unauthenticated and holds a pending slot (limits.pending_connections).
// go-libp2p has no option for it, so this builds the upgrader the way
// go-libp2p does, plus the timeout. (QUIC has its own 5s handshake
// timeout.)
func handshakeTimeout(d time.Duration) libp2p.Option {
	upgrader := func(security []sec.SecureTransport, muxers []tptu.StreamMuxer, psk pnet.PSK, rm network.ResourceManager, gater connmgr.ConnectionGater) (transport.Upgrader, error) {
		return tptu.New(security, muxers, psk, rm, gater, tptu.WithAcceptTimeout(d))
	}
	return libp2p.WithFxOption(fx.Decorate(fx.Annotate(upgrader, fx.ParamTags(`name:"security"`))))
}

// keepaliveTimes are how often peers with live streams are pinged, and how
// long a ping may take before the peer is cut off: half of
// timeouts.keepalive each (pinged more often if RTTInterval is shorter).
func (h *Host) keepaliveTimes() (interval, timeout time.Duration) {
	half := h.cfg.Timeouts.Keepalive.Std() / 2
	return min(h.cfg.RTTInterval, half), half
}
