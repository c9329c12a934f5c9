package config

import (
	"math"
	"strings"
	"time"

	ma "github.com/multiformats/go-multiaddr"

	"github.com/p2ptun/p2ptun/spec"
)

// Validate checks every field and fills zero timeouts with defaults.
func (c *Config) Validate() error {
	d := Default()
	if c.Identity.KeyFile == "" {
		c.Identity.KeyFile = d.Identity.KeyFile
	}
	if len(c.Network.ListenAddrs) == 0 {
		return keyErrf("network.listen_addrs", " is empty: list at least one address, e.g. \"/ip4/0.0.0.0/tcp/4141\"")
	}
	for _, a := range c.Network.ListenAddrs {
		m, err := ma.NewMultiaddr(a)
		if err != nil {
			return keyErrf("network.listen_addrs", ": %q is not a multiaddr: %w", a, err)
		}
		if err := CheckSwarmAddr(m); err != nil {
			return keyErrf("network.listen_addrs", ": %w", err)
		}
	}
	if _, err := spec.ParseAliases(c.Peers); err != nil {
		return keyErrf("peers", ": %s", spec.Reason(err))
	}
	c.Access.validate()
	if err := c.Network.validateRelays(); err != nil {
		return err
	}
	if err := c.Relay.Validate(); err != nil {
		return err
	}
	if err := c.Discovery.validate(d.Discovery); err != nil {
		return err
	}
	if err := c.Limits.Validate(); err != nil {
		return err
	}
	if err := c.Timeouts.Validate(); err != nil {
		return err
	}
	if _, err := MetricsAddr(c.Metrics.Listen); err != nil {
		return keyErrf("metrics.listen", ": %w", err)
	}
	if err := c.checkPeers(); err != nil {
		return err
	}
	return c.validateTunnels()
}

// Minimums and maximums below or above which a value would break the
// daemon rather than tune it (a keepalive ticker of zero panics, one of a
// few nanoseconds burns a core; MiB counts past MaxMiB overflow a byte
// count). Validate enforces them, for `config check` and the daemon alike.
const (
	MinKeepalive      = time.Second            // probed every half of it
	MinNetTimeout     = 100 * time.Millisecond // timeouts.dial, stream_open, target_dial, udp_flow_idle
	MinLogInterval    = time.Second            // limits.log_interval
	MinPeerStreamRate = 0.01                   // limits.peer_stream_rate, per second
	MinRelayDuration  = time.Second            // relay.duration, when set
	MinReservationTTL = time.Minute            // relay.reservation_ttl; clients refresh each minute
	MaxMiB            = 1 << 30                // memory_mib, peer_memory_mib, data_mib (1 PiB)
)

// Validate checks the timeouts and fills zero ones with their defaults.
func (t *Timeouts) Validate() error {
	d := Default().Timeouts
	return fill([]durationKey{
		{"timeouts.dial", &t.Dial, d.Dial, MinNetTimeout},
		{"timeouts.handshake", &t.Handshake, d.Handshake, MinNetTimeout},
		{"timeouts.stream_open", &t.StreamOpen, d.StreamOpen, MinNetTimeout},
		{"timeouts.target_dial", &t.TargetDial, d.TargetDial, MinNetTimeout},
		{"timeouts.shutdown", &t.Shutdown, d.Shutdown, 0},
		{"timeouts.drain", &t.Drain, d.Drain, 0},
		{"timeouts.keepalive", &t.Keepalive, d.Keepalive, MinKeepalive},
		{"timeouts.udp_flow_idle", &t.UDPFlowIdle, d.UDPFlowIdle, MinNetTimeout},
	})
}

func (a *Access) validate() {
	if len(a.Allow) == 0 {
		a.Allow = nil
	}
	if len(a.Deny) == 0 {
		a.Deny = nil
	}
}

// Aliases are the names of [peers], for parsing what refers to them.
func (c *Config) Aliases() spec.Aliases {
	if len(c.Peers) == 0 {
		return nil
	}
	return spec.Aliases(c.Peers)
}

func ptr[T any](v T) *T { return &v }

// On reports a *bool option's value, with def when it is unset.
func On(b *bool, def bool) bool {
	if b == nil {
		return def
	}
	return *b
}

func (n *Network) validateRelays() error {
	if n.HolePunching == nil {
		n.HolePunching = ptr(true)
	}
	if n.AutoRelay == nil {
		n.AutoRelay = ptr(true)
	}

	if len(n.Relays) == 0 {
		n.Relays = nil
	}
	switch n.Reachability {
	case "":
		n.Reachability = "auto"
	case "auto", "private", "public":
	default:
		return keyErrf("network.reachability", ": %q is not auto, private or public", n.Reachability)
	}
	return nil
}

func (x *Discovery) validate(d Discovery) error {
	if x.MDNS == nil {
		x.MDNS = ptr(true)
	}
	switch x.DHT {
	case "":
		x.DHT = d.DHT
	case "off", "client", "server", "auto":
	default:
		return keyErrf("discovery.dht", ": %q is not off, client, server or auto", x.DHT)
	}
	if len(x.Bootstrap) == 0 {
		x.Bootstrap = nil
	}
	if x.ProtocolPrefix == "" {
		x.ProtocolPrefix = d.ProtocolPrefix
	}
	if !strings.HasPrefix(x.ProtocolPrefix, "/") || strings.ContainsAny(x.ProtocolPrefix, " \t\n") {
		return keyErrf("discovery.protocol_prefix", ": %q must be a path like /p2ptun", x.ProtocolPrefix)
	}
	return nil
}

// Validate checks the relay settings and fills zero ones with their
// defaults.
func (r *Relay) Validate() error {
	d := Default().Relay
	if len(r.Allow) == 0 {
		r.Allow = nil
	}
	if err := fill([]intKey{
		{"relay.max_reservations", &r.MaxReservations, d.MaxReservations},
		{"relay.max_circuits", &r.MaxCircuits, d.MaxCircuits},
		{"relay.data_mib", &r.DataMiB, 0},
	}); err != nil {
		return err
	}
	if r.DataMiB > MaxMiB {
		return keyErrf("relay.data_mib", " = %d is too large: at most %d", r.DataMiB, MaxMiB)
	}
	if r.Duration.Duration < 0 {
		return keyErrf("relay.duration", " must not be negative")
	}
	if r.Duration.Duration > 0 && r.Duration.Duration < MinRelayDuration {
		return keyErrf("relay.duration", " = %q is too short: use at least %q (or 0s for no cap)", r.Duration.Duration, MinRelayDuration)
	}
	return durationKey{"relay.reservation_ttl", &r.ReservationTTL, d.ReservationTTL, MinReservationTTL}.fill()
}

// Validate checks the limits and fills zero ones with their defaults.
func (l *Limits) Validate() error {
	d := Default().Limits
	if err := fill([]intKey{
		{"limits.connections", &l.Connections, d.Connections},
		{"limits.streams", &l.Streams, d.Streams},
		{"limits.peer_streams", &l.PeerStreams, d.PeerStreams},
		{"limits.listener_streams", &l.ListenerStreams, d.ListenerStreams},
		{"limits.listener_peer_streams", &l.ListenerPeerStreams, d.ListenerPeerStreams},
		{"limits.peer_stream_burst", &l.PeerStreamBurst, d.PeerStreamBurst},
		{"limits.named_peer_stream_burst", &l.NamedPeerStreamBurst, d.NamedPeerStreamBurst},
		{"limits.memory_mib", &l.MemoryMiB, d.MemoryMiB},
		{"limits.peer_memory_mib", &l.PeerMemoryMiB, d.PeerMemoryMiB},
		{"limits.pending_connections", &l.PendingConnections, d.PendingConnections},
		{"limits.pending_connections_per_ip", &l.PendingConnectionsPerIP, d.PendingConnectionsPerIP},
	}); err != nil {
		return err
	}
	for _, f := range []struct {
		name string
		v    int
	}{{"limits.memory_mib", l.MemoryMiB}, {"limits.peer_memory_mib", l.PeerMemoryMiB}} {
		if f.v > MaxMiB {
			return keyErrf(f.name, " = %d is too large: at most %d", f.v, MaxMiB)
		}
	}
	if err := fillRate("limits.peer_stream_rate", &l.PeerStreamRate, d.PeerStreamRate); err != nil {
		return err
	}
	if err := fillRate("limits.named_peer_stream_rate", &l.NamedPeerStreamRate, d.NamedPeerStreamRate); err != nil {
		return err
	}
	return durationKey{"limits.log_interval", &l.LogInterval, d.LogInterval, MinLogInterval}.fill()
}

// fillRate checks a streams-per-second key; zero takes def.
func fillRate(name string, r *float64, def float64) error {
	switch v := *r; {
	case math.IsNaN(v) || math.IsInf(v, 0):
		return keyErrf(name, " = %v is not a number of new streams per second: use e.g. 100.0", v)
	case v < 0:
		return keyErrf(name, " must not be negative")
	case v == 0:
		*r = def
	case v < MinPeerStreamRate:
		return keyErrf(name, " = %v is too small: use at least %v (or 0 for the default, %v)", v, MinPeerStreamRate, def)
	}
	return nil
}
