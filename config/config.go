package config

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/user"
	"strconv"
	"strings"
	"time"

	"github.com/pelletier/go-toml/v2"

	"github.com/p2ptun/p2ptun/config/tomlpos"
)

// DefaultPort is the swarm port p2ptun listens on (TCP and QUIC) unless
// configured otherwise. It is not kubo's 4001, so both run on one host.
const DefaultPort = 4141

// File names inside the home directory.
const (
	ConfigFile  = "config.toml"
	KeyFile     = "identity.key"
	APISocket   = "api.sock"
	DefaultHome = ".p2ptun" // under the user's home directory
)

// ErrInvalid wraps every parse or validation error of a config file.
var ErrInvalid = errors.New("invalid config")

// Config is the content of config.toml. Zero fields take the defaults
// documented on each field (see Default).
type Config struct {
	Identity  Identity  `toml:"identity"`
	Network   Network   `toml:"network"`
	Access    Access    `toml:"access"`
	Limits    Limits    `toml:"limits"`
	Relay     Relay     `toml:"relay"`
	Discovery Discovery `toml:"discovery"`
	Timeouts  Timeouts  `toml:"timeouts"`
	Metrics   Metrics   `toml:"metrics"`
	API       API       `toml:"api"`

	// Peers names peers, like ssh's Host: NAME = "/p2p/ID" (or a bare ID,
	// or a full multiaddr ending in /p2p/ID). A name stands for its peer
	// wherever a PEER is written: the tunnel tables' peer, peers and
	// allow, and every command's PEER argument (see spec.Aliases).
	// `p2ptun peer add|rm` edits it. Default none.
	Peers map[string]string `toml:"peers,omitempty"`

	// Listen and Forward are the tunnels the daemon starts at boot and
	// keeps in step with the file on reload.
	Listen  []ListenTunnel  `toml:"listen,omitempty"`
	Forward []ForwardTunnel `toml:"forward,omitempty"`
}

// API configures the control socket.
type API struct {
	// Group is an operator group (a name or a numeric gid) whose members
	// may use the control socket beside the daemon's own user and root:
	// the socket becomes 0660 and its directory 0750, both with this
	// group. Default "": the socket is 0600, for the daemon's user and root.
	Group string `toml:"group"`
}

// GID returns the gid of Group, a group name or a number, or -1 for none.
// An unknown group is an ErrInvalid error.
func (a API) GID() (int, error) {
	if a.Group == "" {
		return -1, nil
	}
	g, err := user.LookupGroup(a.Group)
	if err != nil {
		if g, err = user.LookupGroupId(a.Group); err != nil {
			return 0, keyErrf("api.group", " = %q: no such group on this system: create it (groupadd %s), or remove the key", a.Group, a.Group)
		}
	}
	gid, err := strconv.Atoi(g.Gid)
	if err != nil {
		return 0, keyErrf("api.group", " = %q: gid %q is not a number", a.Group, g.Gid)
	}
	return gid, nil
}

// Metrics configures the Prometheus metrics endpoint.
type Metrics struct {
	// Listen is where the daemon serves http://LISTEN/metrics: host:port
	// or /ip4/HOST/tcp/PORT. A host-less ":9464" binds loopback only;
	// "0.0.0.0:9464" every interface. Default "": no metrics.
	Listen string `toml:"listen"`
}

// Discovery configures how the node finds the addresses of a peer it
// knows only by ID: first the peerstore (addresses given before, and the
// on-disk cache), then the Kademlia DHT. Every lookup is bounded by
// timeouts.dial.
type Discovery struct {
	// MDNS announces the node on the LAN and learns LAN peers' addresses
	// by multicast DNS. Default true.
	MDNS *bool `toml:"mdns"`
	// DHT is "off", "client" (query only), "server" (also answer) or
	// "auto" (server once AutoNAT finds the node publicly reachable).
	// Default "auto".
	DHT string `toml:"dht"`
	// Bootstrap peers (multiaddrs ending in /p2p/ID) the DHT starts from.
	// Default none: the DHT then learns only from peers met otherwise.
	Bootstrap []string `toml:"bootstrap"`
	// ProtocolPrefix keeps p2ptun's DHT apart from others. Default
	// "/p2ptun"; "/ipfs" joins the public IPFS DHT (only with bootstrap
	// peers that serve it).
	ProtocolPrefix string `toml:"protocol_prefix"`
}

// Relay configures `p2ptun relay`, the circuit relay v2 service. Unlike
// go-libp2p's defaults (2 minutes and 128 KiB per relayed connection),
// relayed connections are not capped unless Duration or DataMiB is set:
// the relay serves only the peers it allows, so it can carry real traffic.
type Relay struct {
	// Allow lists the peers that may reserve a slot and connect through
	// the relay; both ends of a relayed connection must be on it.
	Allow []string `toml:"allow"`
	// AllowAll serves any peer (a public relay). Default false.
	AllowAll bool `toml:"allow_all"`
	// MaxReservations caps active reservations. Default 128.
	MaxReservations int `toml:"max_reservations"`
	// MaxCircuits caps open relayed connections per peer. Default 64.
	MaxCircuits int `toml:"max_circuits"`
	// Duration caps each relayed connection's life; 0 means no cap.
	Duration Duration `toml:"duration"`
	// DataMiB caps the data relayed each way per connection; 0 means no cap.
	DataMiB int `toml:"data_mib"`
	// ReservationTTL is how long a reservation lasts before the client
	// must refresh it. Default 1h.
	ReservationTTL Duration `toml:"reservation_ttl"`
}

// Access is the node-wide connection policy, enforced by a libp2p
// connection gater before any protocol runs. Deny wins over Allow.
type Access struct {
	// Allow, when not empty, lists the only peers that may connect (in
	// either direction). Default empty: any peer may connect, and each
	// listener's own allowlist decides who may use it.
	Allow []string `toml:"allow"`
	// Deny lists peers that may never connect. Default empty.
	Deny []string `toml:"deny"`
}

// Limits caps what peers may use, through go-libp2p's resource manager
// (concurrency) and per-peer token buckets (stream rate). Zero fields take
// the defaults below, sized for a 2-core, 24 GiB machine.
type Limits struct {
	// Connections caps open connections node-wide. Default 1024.
	Connections int `toml:"connections"`
	// Streams caps open streams node-wide. Default 16384.
	Streams int `toml:"streams"`
	// PeerStreams caps one peer's open streams, all protocols. Default 4096.
	PeerStreams int `toml:"peer_streams"`
	// ListenerStreams caps one listener's open streams, all peers.
	// Default 8192.
	ListenerStreams int `toml:"listener_streams"`
	// ListenerPeerStreams caps one peer's open streams on one listener.
	// Default 2048 (one peer can hold 1,000 tunnels with room to spare).
	ListenerPeerStreams int `toml:"listener_peer_streams"`
	// PeerStreamRate caps new streams per second from one peer to one
	// listener, in the long run, for peers the listener does not name:
	// those let in by allow_all or by an invite. Default 100.
	PeerStreamRate float64 `toml:"peer_stream_rate"`
	// PeerStreamBurst is how many new streams such a peer may open at
	// once on one listener before PeerStreamRate applies. Default 1000.
	PeerStreamBurst int `toml:"peer_stream_burst"`
	// NamedPeerStreamRate is PeerStreamRate for the peers a listener
	// names in its allow list (--allow): peers someone chose to trust,
	// whose clients (a connection per request, pgbench -C at ~330/s)
	// need more than the guard against strangers. Default 1000.
	NamedPeerStreamRate float64 `toml:"named_peer_stream_rate"`
	// NamedPeerStreamBurst is PeerStreamBurst for those peers. Default
	// 2000, about listener_peer_streams: a named peer may fill its whole
	// share of a listener at once.
	NamedPeerStreamBurst int `toml:"named_peer_stream_burst"`
	// MemoryMiB caps the memory the swarm reserves (stream windows,
	// buffers). Default 4096.
	MemoryMiB int `toml:"memory_mib"`
	// PeerMemoryMiB caps one peer's share of it. Default 1024.
	PeerMemoryMiB int `toml:"peer_memory_mib"`
	// PendingConnections caps inbound connections that have not finished
	// their handshake (not yet authenticated), node-wide. Default 256.
	PendingConnections int `toml:"pending_connections"`
	// PendingConnectionsPerIP caps them per source: one IPv4 address or
	// one IPv6 /56. Default 8 (go-libp2p dials at most 8 addresses of a
	// peer at once).
	PendingConnectionsPerIP int `toml:"pending_connections_per_ip"`
	// LogInterval is how often a peer that hits a limit or is refused is
	// logged: once per peer per interval, with a count. Default 1m.
	LogInterval Duration `toml:"log_interval"`
}

// Identity locates the node's private key.
type Identity struct {
	// KeyFile is the Ed25519 key, relative to the home directory unless
	// absolute. Default "identity.key".
	KeyFile string `toml:"key_file"`
}

// Network configures the libp2p swarm.
type Network struct {
	// ListenAddrs are the swarm's listen multiaddrs. Default: TCP and QUIC
	// on DefaultPort on every IPv4 and IPv6 interface.
	ListenAddrs []string `toml:"listen_addrs"`
	// Relays are circuit relays (multiaddrs ending in /p2p/ID) the node
	// reserves a slot on, so that peers can reach it through them when it
	// cannot be dialed directly. Default none.
	Relays []string `toml:"relays"`
	// AutoRelay reserves slots on relays the node meets (through the DHT
	// or any connection) when it finds itself unreachable. Default true.
	AutoRelay *bool `toml:"autorelay"`
	// Reachability is "auto" (ask peers with AutoNAT), "private" (assume
	// the node cannot be dialed: reserve relay slots at once) or "public".
	// Default "auto".
	Reachability string `toml:"reachability"`
	// HolePunching upgrades relayed connections to direct ones (DCUtR)
	// when both NATs allow it. Default true.
	HolePunching *bool `toml:"hole_punching"`
	// PortMapping asks the router for a port mapping (UPnP / NAT-PMP).
	// Default false: it changes the router's configuration.
	PortMapping bool `toml:"port_mapping"`
	// AutoNATService answers other peers' reachability checks (AutoNAT),
	// which is how peers behind NAT learn that they are. Default false:
	// go-libp2p v0.51's service keeps a second swarm whose goroutines
	// outlive the host (found by goleak); enable it on long-lived nodes.
	AutoNATService bool `toml:"autonat_service"`
	// SwarmKey is a kubo-format swarm.key (a pre-shared key) that makes
	// this a private network: only nodes with the same key can connect.
	// Relative to the home directory unless absolute. Default empty (a
	// public network). Private networks work over TCP and WebSocket only;
	// QUIC, WebTransport and WebRTC cannot carry the key and are refused.
	SwarmKey string `toml:"swarm_key"`
}

// Timeouts bound every network wait the daemon makes.
type Timeouts struct {
	// Dial bounds connecting to a peer. Default 15s.
	Dial Duration `toml:"dial"`
	// Handshake bounds how long an inbound connection may take to
	// authenticate and negotiate its muxer; a silent one is closed then.
	// Default 5s.
	Handshake Duration `toml:"handshake"`
	// StreamOpen bounds opening and negotiating a stream on an existing
	// connection. Default 10s.
	StreamOpen Duration `toml:"stream_open"`
	// TargetDial bounds a listener's dial of its local target. Default 5s.
	TargetDial Duration `toml:"target_dial"`
	// Shutdown bounds how long the daemon waits for in-flight API requests
	// when it stops. Default 10s.
	Shutdown Duration `toml:"shutdown"`
	// Drain is how long live streams may go on finishing when the daemon
	// stops, after it has stopped accepting new ones; those still open
	// then are reset. Default 5s.
	Drain Duration `toml:"drain"`
	// Keepalive bounds how long a peer that stops answering keeps its
	// connections: one with live streams is pinged every half of it, and
	// cut off (its streams reset) when a ping gets no answer within the
	// other half. Default 15s.
	Keepalive Duration `toml:"keepalive"`
	// UDPFlowIdle ends a UDP tunnel's flow (one client address, one
	// stream) once no datagram has passed either way for this long, on
	// either side. Default 60s, like common NAT and conntrack timeouts
	// for UDP; at least 100ms.
	UDPFlowIdle Duration `toml:"udp_flow_idle"`
}

// Duration is a time.Duration written as a Go duration string ("15s").
// It is a struct so that a bare TOML integer (dial = 5) is an error rather
// than five nanoseconds.
type Duration struct{ time.Duration }

// D returns d as a Duration.
func D(d time.Duration) Duration { return Duration{d} }

// UnmarshalText implements encoding.TextUnmarshaler.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("invalid duration %q (use e.g. \"15s\", \"500ms\")", b)
	}
	d.Duration = v
	return nil
}

// MarshalText implements encoding.TextMarshaler.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.Duration.String()), nil }

// Std returns d as a time.Duration.
func (d Duration) Std() time.Duration { return d.Duration }

// DefaultListenAddrs are the swarm addresses used when none are configured.
func DefaultListenAddrs() []string {
	p := fmt.Sprint(DefaultPort)
	return []string{
		"/ip4/0.0.0.0/tcp/" + p,
		"/ip6/::/tcp/" + p,
		"/ip4/0.0.0.0/udp/" + p + "/quic-v1",
		"/ip6/::/udp/" + p + "/quic-v1",
	}
}

// Default returns the configuration used when config.toml sets nothing.
func Default() Config {
	return Config{
		Identity:  Identity{KeyFile: KeyFile},
		Network:   Network{ListenAddrs: DefaultListenAddrs(), Reachability: "auto", HolePunching: ptr(true), AutoRelay: ptr(true)},
		Discovery: Discovery{MDNS: ptr(true), DHT: "auto", ProtocolPrefix: "/p2ptun"},
		Relay: Relay{
			MaxReservations: 128,
			MaxCircuits:     64,
			ReservationTTL:  D(time.Hour),
		},
		Limits: Limits{
			Connections:          1024,
			Streams:              16384,
			PeerStreams:          4096,
			ListenerStreams:      8192,
			ListenerPeerStreams:  2048,
			PeerStreamRate:       100,
			PeerStreamBurst:      1000,
			NamedPeerStreamRate:  1000,
			NamedPeerStreamBurst: 2000,
			MemoryMiB:            4096,
			PeerMemoryMiB:        1024,
			LogInterval:          D(time.Minute),

			PendingConnections:      256,
			PendingConnectionsPerIP: 8,
		},
		Timeouts: Timeouts{
			Dial:       D(15 * time.Second),
			Handshake:  D(5 * time.Second),
			StreamOpen: D(10 * time.Second),
			TargetDial: D(5 * time.Second),
			Shutdown:   D(10 * time.Second),
			Drain:      D(5 * time.Second),
			Keepalive:  D(15 * time.Second),

			UDPFlowIdle: D(time.Minute),
		},
	}
}

// Parse decodes a config file's bytes over the defaults and validates the
// result. name is used in error messages. Unknown keys are errors, so a
// typo never silently falls back to a default.
func Parse(name string, b []byte) (Config, error) {
	c := Default()
	c.Network.ListenAddrs = nil
	dec := toml.NewDecoder(bytes.NewReader(b)).DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		return Config{}, fmt.Errorf("%w: %s", ErrInvalid, describeTOMLError(name, err))
	}
	if c.Network.ListenAddrs == nil {
		c.Network.ListenAddrs = DefaultListenAddrs()
	}
	// The decoder accepted b, so go-toml's parser does too.
	l, _ := tomlpos.Scan(b)
	c.locateTunnels(l)
	if err := c.Validate(); err != nil {
		return Config{}, fmt.Errorf("%w: %s", ErrInvalid, locate(name, l, err))
	}
	return c, nil
}

func describeTOMLError(name string, err error) string {
	var sm *toml.StrictMissingError
	if errors.As(err, &sm) && len(sm.Errors) > 0 {
		var parts []string
		for _, e := range sm.Errors {
			row, _ := e.Position()
			parts = append(parts, fmt.Sprintf("%s:%d: unknown key %q", name, row, strings.Join(e.Key(), ".")))
		}
		return strings.Join(parts, "; ")
	}
	var de *toml.DecodeError
	if errors.As(err, &de) {
		row, col := de.Position()
		return fmt.Sprintf("%s:%d:%d: %s", name, row, col, de.Error())
	}
	return fmt.Sprintf("%s: %v", name, err)
}

// Load reads and parses the config file at path, as the daemon does at
// boot. A missing file is not an error: the defaults apply. A file that
// cannot be read (a directory, no permission) is ErrInvalid, in one line.
func Load(path string) (Config, error) { return load(path, true) }

// LoadFile reads and parses the config file at path, which must exist: a
// reload uses it, so that a file that went missing changes nothing rather
// than putting the defaults (an empty access policy, no tunnels) in its
// place. Every error wraps ErrInvalid.
func LoadFile(path string) (Config, error) { return load(path, false) }

func load(path string, missingOK bool) (Config, error) {
	b, err := os.ReadFile(path)
	if missingOK && errors.Is(err, fs.ErrNotExist) {
		return Default(), nil
	}
	if err != nil {
		return Config{}, ReadError(path, err)
	}
	return Parse(path, b)
}

// ReadError says in one line why the config file at path could not be
// read, and what to do.
func ReadError(path string, err error) error {
	if st, serr := os.Stat(path); serr == nil && st.IsDir() {
		return fmt.Errorf("%w: %s is a directory: it must be a config file (move the directory away)", ErrInvalid, path)
	}
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("%w: %s does not exist: restore it (an empty file means the defaults)", ErrInvalid, path)
	case errors.Is(err, fs.ErrPermission):
		return fmt.Errorf("%w: %s cannot be read: permission denied (the daemon's user must be able to read it)", ErrInvalid, path)
	}
	return fmt.Errorf("%w: reading %s: %w", ErrInvalid, path, err)
}
