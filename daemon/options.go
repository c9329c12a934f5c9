package daemon

import (
	"fmt"
	"net"
	"path/filepath"
	"strings"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/pnet"
	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"

	"github.com/p2ptun/p2ptun/config"
	"github.com/p2ptun/p2ptun/config/homedir"
	"github.com/p2ptun/p2ptun/node"
	"github.com/p2ptun/p2ptun/p2phost"
	"github.com/p2ptun/p2ptun/spec"
)

// usageError is bad input in a Config (an address or peer ID the config
// package does not check): node.ErrUsage, without that error's text.
type usageError struct{ error }

func (usageError) Is(target error) bool { return target == node.ErrUsage }

func usagef(err error) error { return usageError{err} }

// nodeOptions turns a daemon's config into the node's options: addresses
// and peers parsed, the swarm key read, and the config file as the place
// where runtime edits are saved (unless the daemon is ephemeral). The
// metrics registry is left to Run.
func nodeOptions(cfg Config, sk crypto.PrivKey) (node.Options, error) {
	c, home := cfg.Config, cfg.Home
	addrs := make([]ma.Multiaddr, 0, len(c.Network.ListenAddrs))
	for _, s := range c.Network.ListenAddrs {
		m, err := swarmAddrs(s, c.SwarmKeyPath(home) != "")
		if err != nil {
			return node.Options{}, err
		}
		addrs = append(addrs, m...)
	}
	// The config's lists are what runtime `access` edits change and save;
	// AllowPeers and DenyPeers hold for this run and are never saved.
	// Each list, and each peer list below, may use the names of [peers].
	names := c.Aliases()
	var allow, deny, runAllow, runDeny, relayAllow []peer.ID
	for _, l := range []struct {
		dst *[]peer.ID
		ids []string
	}{{&allow, c.Access.Allow}, {&deny, c.Access.Deny}, {&runAllow, cfg.AllowPeers}, {&runDeny, cfg.DenyPeers}, {&relayAllow, c.Relay.Allow}} {
		var err error
		if *l.dst, err = peerIDs(names, l.ids); err != nil {
			return node.Options{}, err
		}
	}
	var (
		saveAccess  func(config.Access) error
		saveListen  func(config.ListenTunnel) error
		saveForward func(config.ForwardTunnel) error
		peerCache   string
		cfgPath     = filepath.Join(home, config.ConfigFile)
	)
	if !cfg.Ephemeral {
		saveAccess = func(a config.Access) error { return homedir.SaveAccess(cfgPath, a) }
		saveListen = func(t config.ListenTunnel) error { return homedir.AppendListen(cfgPath, t) }
		saveForward = func(t config.ForwardTunnel) error { return homedir.AppendForward(cfgPath, t) }
		peerCache = filepath.Join(home, homedir.PeersFile)
	}
	var psk pnet.PSK
	if keyPath := c.SwarmKeyPath(home); keyPath != "" {
		var err error
		if psk, err = homedir.LoadSwarmKey(keyPath); err != nil {
			return node.Options{}, err
		}
	}
	bootstrap, err := peerInfos(names, c.Discovery.Bootstrap)
	if err != nil {
		return node.Options{}, err
	}
	relays, err := peerInfos(names, c.Network.Relays)
	if err != nil {
		return node.Options{}, err
	}
	var relayCfg *config.Relay
	if cfg.Relay {
		r := c.Relay
		r.Allow = nil // as peer IDs, its names resolved
		for _, id := range relayAllow {
			r.Allow = append(r.Allow, id.String())
		}
		relayCfg = &r
	}
	return node.Options{
		Config: p2phost.Config{
			Key: sk, ListenAddrs: addrs, Timeouts: c.Timeouts, Limits: c.Limits, SwarmKey: psk,
			Relay: relayCfg, Relays: relays, Reachability: c.Network.Reachability,
			AutoRelay:    config.On(c.Network.AutoRelay, true) && relayCfg == nil,
			HolePunching: config.On(c.Network.HolePunching, true), PortMapping: c.Network.PortMapping,
			NATService: c.Network.AutoNATService, PeerCache: peerCache,
			DHT: c.Discovery.DHT, Bootstrap: bootstrap, DHTPrefix: c.Discovery.ProtocolPrefix,
			MDNS:      config.On(c.Discovery.MDNS, true),
			UserAgent: cfg.UserAgent, Logger: cfg.Logger,
		},
		Allow: allow, Deny: deny, RunAllow: runAllow, RunDeny: runDeny, SaveAccess: saveAccess,
		SaveListen: saveListen, SaveForward: saveForward,
	}, nil
}

// peerIDs parses the peers of a list (access, relay), each a peer ID or
// one of a's names.
func peerIDs(a spec.Aliases, ss []string) ([]peer.ID, error) {
	var out []peer.ID
	for _, s := range ss {
		id, err := a.Peer(s)
		if err != nil {
			return nil, err
		}
		out = append(out, id)
	}
	return out, nil
}

// peerInfos parses peer multiaddrs (relays, bootstrap peers), each one
// or a name of a's for one, grouping addresses by peer; each needs an
// address.
func peerInfos(a spec.Aliases, ss []string) ([]peer.AddrInfo, error) {
	var out []peer.AddrInfo
	for _, s := range ss {
		pi, err := a.PeerAddr(s)
		if err != nil {
			return nil, err
		}
		if len(pi.Addrs) == 0 {
			return nil, usagef(fmt.Errorf("%q needs an address: use /ip4/HOST/tcp/PORT/p2p/ID", s))
		}
		merged := false
		for i := range out {
			if out[i].ID == pi.ID {
				out[i].Addrs = append(out[i].Addrs, pi.Addrs...)
				merged = true
			}
		}
		if !merged {
			out = append(out, pi)
		}
	}
	return out, nil
}

// swarmAddrs parses a swarm listen address: a multiaddr the swarm can
// listen on, or host:port (an IP, or localhost), which means TCP and QUIC
// on that port as the defaults do, or TCP alone in a private network
// (QUIC cannot carry a swarm key).
func swarmAddrs(s string, private bool) ([]ma.Multiaddr, error) {
	if !strings.HasPrefix(s, "/") {
		if host, _, err := net.SplitHostPort(s); err == nil && host == "" {
			return nil, usagef(fmt.Errorf("listen address %q needs a host: 0.0.0.0%s for every interface, 127.0.0.1%s for this machine only", s, s, s))
		}
		if !strings.Contains(s, ":") {
			return nil, usagef(fmt.Errorf("listen address %q is neither a multiaddr nor host:port; use e.g. 0.0.0.0:%d or /ip4/0.0.0.0/tcp/%d", s, config.DefaultPort, config.DefaultPort))
		}
		tcp, err := spec.ParseListenAddr(s)
		if err != nil {
			return nil, err
		}
		if private {
			return []ma.Multiaddr{tcp}, nil
		}
		na, err := manet.ToNetAddr(tcp)
		if err != nil {
			return nil, usagef(fmt.Errorf("listen address %q: %w", s, err))
		}
		ta := na.(*net.TCPAddr)
		udp, err := manet.FromNetAddr(&net.UDPAddr{IP: ta.IP, Port: ta.Port, Zone: ta.Zone})
		if err != nil {
			return nil, usagef(fmt.Errorf("listen address %q: %w", s, err))
		}
		return []ma.Multiaddr{tcp, udp.Encapsulate(ma.StringCast("/quic-v1"))}, nil
	}
	m, err := ma.NewMultiaddr(s)
	if err != nil {
		return nil, usagef(fmt.Errorf("listen address %q is not a multiaddr (%v); use e.g. /ip4/0.0.0.0/tcp/%d", s, err, config.DefaultPort))
	}
	if err := config.CheckSwarmAddr(m); err != nil {
		return nil, usagef(fmt.Errorf("--listen-addr: %w", err))
	}
	return []ma.Multiaddr{m}, nil
}
