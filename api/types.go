package api

import (
	"time"

	"github.com/p2ptun/p2ptun/config"
)

// The types in this file are the control API's wire format: the bodies of
// its requests and replies, and the documents `p2ptun … --json` prints.
// Their field names and omitempty rules are a promise to scripts (README,
// "JSON output"); testdata/golden/wire.golden pins them. The server fills
// them from node values in convert.go, so a rename inside node is a
// compile error there, never a silent change here.

// Identity is the body of `p2ptun id --json`; field names follow kubo's
// `ipfs id`.
type Identity struct {
	ID           string
	Addresses    []string
	AgentVersion string
}

// ListenRequest asks the daemon to serve a protocol by dialing a local
// target (POST /v0/listeners/listen).
type ListenRequest struct {
	// Name labels the tunnel in `ls`, events and metrics; optional.
	Name                string `json:",omitempty"`
	Protocol            string
	Target              string
	Allow               []string `json:",omitempty"`
	AllowAll            bool     `json:",omitempty"`
	ReportPeerID        bool     `json:",omitempty"`
	AllowCustomProtocol bool     `json:",omitempty"`
	// ProxyProtocol, "v1" or "v2", sends the target a PROXY protocol
	// header first.
	ProxyProtocol string `json:",omitempty"`
	// InviteOnly lets Allow be empty: peers join the allowlist by
	// redeeming invites.
	InviteOnly bool `json:",omitempty"`
	// Save also appends the tunnel to the config file.
	Save bool `json:",omitempty"`
	// Egress makes it a SOCKS egress: no Target; each stream's SOCKS5
	// request is dialled only if a Permit rule (HOST:PORTS) matches it.
	Egress bool     `json:",omitempty"`
	Permit []string `json:",omitempty"`
}

// ForwardRequest asks the daemon to bind a local address and forward each
// connection to a peer's protocol (POST /v0/listeners/forward).
type ForwardRequest struct {
	// Name labels the tunnel in `ls`, events and metrics; optional.
	Name                string `json:",omitempty"`
	Protocol            string
	ListenAddress       string
	Peer                string
	AllowCustomProtocol bool `json:",omitempty"`
	// Lazy skips connecting to the peer now; the first client connection
	// will.
	Lazy bool `json:",omitempty"`
	// AllowLimited lets the forward use relayed connections that the relay
	// limits in time or data.
	AllowLimited bool `json:",omitempty"`
	// Save also appends the tunnel to the config file.
	Save bool `json:",omitempty"`
	// Addrs are more addresses of Peer, as a ticket lists them.
	Addrs []string `json:",omitempty"`
	// Invite is an invite's secret, presented to the peer before anything
	// is bound.
	Invite []byte `json:",omitempty"`
	// Peers, instead of Peer, make a forward with several peers, in order
	// of preference; Balance picks one for each connection: "failover"
	// (default), "rtt" or "round-robin".
	Peers   []string `json:",omitempty"`
	Balance string   `json:",omitempty"`
	// Socks makes it a local SOCKS5 server whose requests the peer's
	// egress dials; Gateway lets it bind a non-loopback address.
	Socks   bool `json:",omitempty"`
	Gateway bool `json:",omitempty"`
}

// CloseRequest selects listeners to close (POST /v0/listeners/close).
// Exactly one field must be set.
type CloseRequest struct {
	All           bool   `json:",omitempty"`
	Protocol      string `json:",omitempty"`
	ListenAddress string `json:",omitempty"`
	TargetAddress string `json:",omitempty"`
}

// PipeRequest asks the daemon for one stream to a peer's protocol, bridged
// to the API connection (POST /v0/pipe).
type PipeRequest struct {
	Peer                string
	Protocol            string
	AllowCustomProtocol bool `json:",omitempty"`
	// AllowLimited lets the stream use a relayed connection that the relay
	// limits in time or data.
	AllowLimited bool `json:",omitempty"`
	// Addrs are more addresses of Peer, as a ticket lists them.
	Addrs []string `json:",omitempty"`
}

// ShareRequest asks for a ticket to one of the daemon's listeners
// (POST /v0/share).
type ShareRequest struct {
	Protocol string
	// Invite makes the ticket a single-use invite.
	Invite bool `json:",omitempty"`
	// TTL is how long the invite can be redeemed; zero means the daemon's
	// default. Only for invites.
	TTL config.Duration `json:",omitzero"`
}

// Share is the body of `p2ptun share --json`: a ticket and what it says.
type Share struct {
	Ticket   string
	Peer     string
	Protocol string
	// Addresses are the dialable addresses in the ticket, each ending in
	// /p2p/Peer, public ones first.
	Addresses []string
	// Expires is when the invite expires; absent for a plain ticket.
	Expires time.Time `json:",omitzero"`
}

// Listener is one entry of `p2ptun ls --json`. Protocol, ListenAddress and
// TargetAddress are kubo's names; the rest are p2ptun's.
type Listener struct {
	Protocol      string
	ListenAddress string
	TargetAddress string
	ID            uint64
	Name          string   `json:",omitempty"` // a config tunnel's name
	Kind          string   // "listen" or "forward"
	Peer          string   `json:",omitempty"` // forward: the remote peer
	PeerName      string   `json:",omitempty"` // Peer's name in [peers], if it has one
	AllowedPeers  []string `json:",omitempty"` // listen: who may connect
	// AllowedPeerNames are the names in [peers] of those AllowedPeers
	// that have one, by peer ID.
	AllowedPeerNames map[string]string `json:",omitempty"`
	AllowAll         bool              `json:",omitempty"`
	InviteOnly       bool              `json:",omitempty"` // listen: peers join by invites
	ReportPeerID     bool              `json:",omitempty"`
	ProxyProtocol    string            `json:",omitempty"` // listen: "v1" or "v2"
	Egress           bool              `json:",omitempty"` // listen: a SOCKS egress (no target)
	Permit           []string          `json:",omitempty"` // listen --egress: the permit rules
	Socks            bool              `json:",omitempty"` // forward: a local SOCKS5 server
	// Balance and Peers: a forward with several peers' policy, and its
	// peers in the order given, each with its state.
	Balance string         `json:",omitempty"`
	Peers   []ListenerPeer `json:",omitempty"`
}

// Peer states, the State of a ListenerPeer.
const (
	PeerUp   = "up"   // new connections may go to it
	PeerDown = "down" // they go to the others; redialed with backoff
)

// ListenerPeer is one peer of a forward with several, in `ls --json`.
type ListenerPeer struct {
	Peer      string
	PeerName  string  `json:",omitempty"` // Peer's name in [peers], if it has one
	State     string  // up or down
	Error     string  `json:",omitempty"` // why it went down last
	RTTMillis float64 // smoothed round-trip time; 0 if not yet measured
}

// ListenerList is the body of `p2ptun ls --json`.
type ListenerList struct {
	Listeners []Listener
}

// Stream is one entry of `p2ptun stream ls --json`. HandlerID, Protocol,
// OriginAddress and TargetAddress are kubo's names; the rest are p2ptun's.
type Stream struct {
	HandlerID     string
	Protocol      string
	OriginAddress string
	TargetAddress string
	Peer          string
	PeerName      string `json:",omitempty"` // Peer's name in [peers], if it has one
	Kind          string // "listen" (inbound), "forward" or "pipe" (outbound)
	ListenerID    uint64
	BytesIn       int64 // from the peer to the local side
	BytesOut      int64 // from the local side to the peer
	OpenedAt      time.Time
	Path          string  // "direct" or "relayed via <relay peer ID>"
	RTTMillis     float64 // smoothed round-trip time to the peer; 0 if not yet measured
	Destination   string  `json:",omitempty"` // a SOCKS stream: the host:port its client asked for
}

// PingRequest asks the daemon to ping a peer Count times.
type PingRequest struct {
	Peer  string
	Count int
}

// PingReply is the body of `p2ptun ping --json`.
type PingReply struct {
	Peer    string
	Results []PingResult
}

// PingResult is one round trip.
type PingResult struct {
	RTTMillis float64
	Path      string
}

// StreamList is the body of `p2ptun stream ls --json`.
type StreamList struct {
	Streams []Stream
}

// Closed is the body returned by the close operations.
type Closed struct {
	Closed int
}

// StreamCloseRequest closes one stream (ID, kubo's HandlerID) or all.
type StreamCloseRequest struct {
	ID  string `json:",omitempty"`
	All bool   `json:",omitempty"`
}

// AccessRequest names the peer an access edit applies to.
type AccessRequest struct {
	Peer string
}

// AccessList is the node-wide policy, the body of `p2ptun access ls --json`
// and of every access edit.
type AccessList struct {
	Allow []string
	Deny  []string
}

// Tunnel states, the State of a TunnelStatus.
const (
	TunnelStarting = "starting" // first attempt under way
	TunnelUp       = "up"
	TunnelFailed   = "failed" // the last attempt failed; retried with backoff
	TunnelClosed   = "closed" // closed at runtime with `p2ptun close`; back on reload
)

// TunnelStatus is the state of one config-file tunnel.
type TunnelStatus struct {
	Name       string // the tunnel's name, or a label saying what it does
	Kind       string // "listen" or "forward"
	Protocol   string
	Line       int    `json:",omitempty"` // where its table starts in the config file
	State      string // starting, up, failed or closed
	Error      string `json:",omitempty"` // why the last attempt failed
	ListenerID uint64 `json:",omitempty"` // its entry in `p2ptun ls`, when up
	// Attempts counts its failed attempts; NextRetry is when the next one
	// is due (zero when none is).
	Attempts  int       `json:",omitempty"`
	NextRetry time.Time `json:",omitzero"`
}

// Status is the body of GET /v0/status and of `p2ptun wait --json`:
// whether the daemon has finished starting, and the state of each
// config-file tunnel.
type Status struct {
	// Ready is true once the daemon has made its first attempt at every
	// config tunnel (the point at which it writes --ready-file).
	Ready   bool
	Tunnels []TunnelStatus
}

// Up reports whether the daemon is ready and every config tunnel is up
// (or was closed on purpose at runtime).
func (s Status) Up() bool {
	if !s.Ready {
		return false
	}
	for _, t := range s.Tunnels {
		if t.State != TunnelUp && t.State != TunnelClosed {
			return false
		}
	}
	return true
}

// ReloadResult is the body of POST /v0/reload and of `p2ptun reload
// --json`: what the reload changed.
type ReloadResult struct {
	Added, Removed, Unchanged, Restarted []string
	// Failed are the added (or restarted) tunnels whose first attempt
	// failed; they are retried with backoff.
	Failed []TunnelStatus
	// NeedsRestart names config sections that changed but apply only when
	// the daemon restarts (network, limits, ...).
	NeedsRestart []string `json:",omitempty"`
}

// Event types, the Type field of an Event.
const (
	EventTunnelUp         = "tunnel_up"
	EventTunnelDown       = "tunnel_down"
	EventTunnelFailed     = "tunnel_failed" // a config tunnel could not start
	EventStreamOpen       = "stream_open"
	EventStreamClose      = "stream_close"
	EventStreamFailed     = "stream_failed" // a connection that never became a stream
	EventPeerConnected    = "peer_connected"
	EventPeerDisconnected = "peer_disconnected"
	EventReload           = "reload"
	EventRelayHeld        = "relay_reservation_held" // a relay holds a reservation for this node
	EventRelayLost        = "relay_reservation_lost" // it no longer does (Error says why); retried
	EventHolePunch        = "hole_punch"             // an attempt to reach a relayed peer directly ended (Reason)
	// EventForwardPeerDown and EventForwardPeerUp: a peer of a forward
	// with several went down (Error says why) or came back up (Peer).
	EventForwardPeerDown = "forward_peer_down"
	EventForwardPeerUp   = "forward_peer_up"
	// EventLost ends a subscription that fell too far behind: the
	// subscriber missed events and should resubscribe.
	EventLost = "events_lost"
)

// Event is one lifecycle event, a line of GET /v0/events and of `p2ptun
// events --json`. Only the fields that apply to its Type are set.
type Event struct {
	Time time.Time
	Type string

	// Tunnel fields (tunnel_*, and stream_* for the tunnel it belongs to).
	TunnelID      uint64 `json:",omitempty"`
	Name          string `json:",omitempty"` // a config tunnel's name
	Kind          string `json:",omitempty"` // "listen" or "forward"
	Protocol      string `json:",omitempty"`
	ListenAddress string `json:",omitempty"`
	TargetAddress string `json:",omitempty"`

	// Stream fields (stream_*).
	StreamID      uint64  `json:",omitempty"`
	OriginAddress string  `json:",omitempty"`
	Peer          string  `json:",omitempty"` // also peer_*, and the relay of relay_*
	PeerName      string  `json:",omitempty"` // Peer's name in [peers], if it has one
	Path          string  `json:",omitempty"` // also peer_connected
	BytesIn       int64   `json:",omitempty"`
	BytesOut      int64   `json:",omitempty"`
	SetupMillis   float64 `json:",omitempty"`
	Millis        float64 `json:",omitempty"` // stream_close: how long it lived; hole_punch: how long it took
	// Destination is the host:port a SOCKS stream's client asked for
	// (forward --socks, listen --egress), also of one that failed.
	Destination string `json:",omitempty"`
	// Reason says why a stream ended or failed: "eof" (both sides
	// finished), "closed" (closed by p2ptun: stream close, tunnel close,
	// shutdown), "reset" (an error on either side, in Error), the cause
	// of a refusal the peer sent (below), or for stream_failed the cause:
	// "stream_open", "unreachable", "no_listener", or a refusal's:
	// "denied", "rate_limited", "target_dial", "target_timeout",
	// "closing", "stream_limit" (package refusal). A reload event says
	// what changed.
	Reason string `json:",omitempty"`
	Error  string `json:",omitempty"`
}

// errorBody is what the server sends for a failed request.
type errorBody struct {
	Error string
	Code  string
}
