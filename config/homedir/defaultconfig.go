package homedir

// DefaultConfig is the commented config.toml that Init writes, and that
// an edit starts from when there is no file. It parses to
// config.Default().
const DefaultConfig = `# p2ptun configuration. Every key is optional; the values shown are the
# defaults. Durations are Go duration strings ("15s", "500ms").

[identity]
# The node's Ed25519 private key, relative to this directory unless absolute.
# It must be readable by its owner only (chmod 600).
key_file = "identity.key"

[network]
# Swarm listen addresses: TCP and QUIC on port 4141 on every interface.
# The daemon's --listen-addr flag replaces this list.
listen_addrs = [
  "/ip4/0.0.0.0/tcp/4141",
  "/ip6/::/tcp/4141",
  "/ip4/0.0.0.0/udp/4141/quic-v1",
  "/ip6/::/udp/4141/quic-v1",
]

# Circuit relays to reserve a slot on, so peers can reach this node through
# them when it cannot be dialed directly (behind NAT), e.g.
# relays = ["/ip4/203.0.113.7/tcp/4141/p2p/12D3KooW..."]
relays = []
# When unreachable, also reserve slots on relays met through the DHT or any
# connection (only relays with public addresses are advertised).
autorelay = true
# auto: ask peers (AutoNAT) whether this node is reachable; private: assume
# it is not and reserve relay slots at once; public: assume it is.
reachability = "auto"
# Upgrade relayed connections to direct ones when both NATs allow (DCUtR).
hole_punching = true
# Ask the router for a port mapping (UPnP / NAT-PMP). Off by default: it
# changes the router's configuration.
port_mapping = false
# Answer other peers' reachability checks (AutoNAT). Off by default.
autonat_service = false

# swarm_key = "swarm.key"
# A kubo-format swarm.key makes this a private network: only nodes with the
# same key can connect. Works over TCP and WebSocket only, so remove the
# QUIC addresses above when you set it (the daemon refuses to start
# otherwise). The file must be mode 0600.

[access]
# Node-wide policy, checked before any protocol runs. With allow set, only
# those peers can connect at all; deny always wins. Edit at runtime with
# "p2ptun access allow|deny|revoke PEER", which rewrites this table.
allow = []
deny = []

[limits]
# Enforced by go-libp2p's resource manager; a peer over a limit gets its
# streams reset while other peers are served. Sized for 2 cores / 24 GiB.
connections = 1024            # open connections, node-wide
streams = 16384               # open streams, node-wide
peer_streams = 4096           # open streams of one peer, all protocols
listener_streams = 8192       # open streams on one listener, all peers
listener_peer_streams = 2048  # open streams of one peer on one listener
peer_stream_rate = 100.0      # new streams per second, one peer, one listener
peer_stream_burst = 1000      # new streams at once before the rate applies
# The two above are for peers let in by allow_all or an invite; the peers a
# listener's allow list names get these (pgbench -C opens ~330 a second):
named_peer_stream_rate = 1000.0
named_peer_stream_burst = 2000
memory_mib = 4096             # memory the swarm may reserve
peer_memory_mib = 1024        # of which one peer may hold
log_interval = "1m"           # a limited or refused peer is logged once per interval
# Inbound connections still in their handshake (not yet authenticated):
# past these caps new ones are closed at once, so that addresses that open
# connections and stay silent cannot lock peers out. timeouts.handshake
# bounds how long each may stay.
pending_connections = 256        # node-wide
pending_connections_per_ip = 8   # from one IPv4 address or IPv6 /56

[discovery]
# How a peer known only by its ID is found: the peerstore (addresses given,
# cached on disk, or heard on the LAN by mDNS) first, then the Kademlia DHT.
# mDNS announces this node on the LAN (--no-mdns turns it off).
mdns = true
# Lookups are bounded by
# timeouts.dial. dht: off, client (query only), server (also answer), or
# auto (server once the node is found to be publicly reachable).
dht = "auto"
# Peers the DHT starts from (multiaddrs ending in /p2p/ID). None by default.
bootstrap = []
# Keeps p2ptun's DHT apart from the public IPFS one ("/ipfs" would join it).
protocol_prefix = "/p2ptun"

[relay]
# Used only by "p2ptun relay", the circuit relay service. Only the peers
# allowed here may reserve slots or connect through it (both ends of a
# relayed connection must be allowed), and their connections carry real
# traffic: no time or data cap unless set below.
allow = []
allow_all = false
max_reservations = 128
max_circuits = 64             # open relayed connections per peer
duration = "0s"               # cap on a relayed connection's life; 0s: none
data_mib = 0                  # cap on data relayed each way; 0: none
reservation_ttl = "1h"

# Tunnels the daemon starts at boot; "p2ptun reload" (or SIGHUP) applies
# changes without touching the others. "p2ptun listen|forward --save" appends
# tables like these. Every command-line option has a key:
#
# [[listen]]
# name = "web"                          # optional label
# protocol = "/x/web"
# target = "/ip4/127.0.0.1/tcp/8080"    # or "127.0.0.1:8080"
# allow = ["12D3KooW..."]               # or allow_all = true, or invite_only = true
# report_peer_id = false
# proxy_protocol = "v2"                 # PROXY header to the target: "v1", or "v2" with the peer ID
# allow_custom_protocol = false
#
# [[forward]]
# name = "db"
# protocol = "/x/db"
# listen = "/ip4/127.0.0.1/tcp/5432"
# peer = "/p2p/12D3KooW..."             # or a full multiaddr ending in /p2p/ID
# addrs = []                            # more addresses of the peer
# lazy = false                          # true: bind now, reach the peer on first use
# allow_limited = false
# allow_custom_protocol = false

[timeouts]
# Connecting to a peer that has no open connection.
dial = "15s"
# An inbound connection authenticating (and negotiating its muxer); one
# that says nothing for this long is closed.
handshake = "5s"
# Opening and negotiating a stream on an existing connection.
stream_open = "10s"
# A listener dialing its local target.
target_dial = "5s"
# Waiting for in-flight API requests when the daemon stops.
shutdown = "10s"
# When the daemon stops, how long live connections may go on finishing
# (after it stops accepting new ones) before they are reset.
drain = "5s"
# A peer with live connections that answers no ping for this long is cut
# off and its connections reset (pinged every half of it).
keepalive = "15s"
# A UDP tunnel's flow (one client address, one stream) ends when no
# datagram has passed either way for this long, as NAT and conntrack
# forget a UDP mapping.
udp_flow_idle = "1m0s"

[metrics]
# Serve Prometheus metrics on http://LISTEN/metrics, e.g. "127.0.0.1:9464"
# or "/ip4/127.0.0.1/tcp/9464". A host-less ":9464" binds loopback only;
# write "0.0.0.0:9464" to expose them on every interface. Empty: off.
# The daemon's --metrics flag overrides it.
listen = ""

[api]
# An operator group (a name or a gid) whose members may use the control
# socket beside the daemon's own user and root: the socket becomes 0660 and
# its directory 0750, with this group. The daemon's user must be a member.
# Empty: nobody else.
group = ""
`
