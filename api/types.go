package api

import (
	"strconv"
	"time"

	"github.com/p2ptun/p2ptun/node"
)

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
	AllowedPeers  []string `json:",omitempty"` // listen: who may connect
	AllowAll      bool     `json:",omitempty"`
	InviteOnly    bool     `json:",omitempty"` // listen: peers join by invites
	ReportPeerID  bool     `json:",omitempty"`
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
	Kind          string // "listen" (inbound), "forward" or "pipe" (outbound)
	ListenerID    uint64
	BytesIn       int64 // from the peer to the local side
	BytesOut      int64 // from the local side to the peer
	OpenedAt      time.Time
	Path          string  // "direct" or "relayed via <relay peer ID>"
	RTTMillis     float64 // smoothed round-trip time to the peer; 0 if not yet measured
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

func millis(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// errorBody is what the server sends for a failed request.
type errorBody struct {
	Error string
	Code  string
}

func listenerFrom(l node.Listener) Listener {
	return Listener{
		Protocol: l.Protocol, ListenAddress: l.ListenAddress, TargetAddress: l.TargetAddress,
		ID: l.ID, Name: l.Name, Kind: string(l.Kind), Peer: l.Peer, AllowedPeers: l.AllowedPeers,
		AllowAll: l.AllowAll, InviteOnly: l.InviteOnly, ReportPeerID: l.ReportPeerID,
	}
}

func streamFrom(s node.StreamInfo, rtt time.Duration) Stream {
	return Stream{
		Path: s.Path, RTTMillis: millis(rtt),
		HandlerID: strconv.FormatUint(s.ID, 10), Protocol: s.Protocol,
		OriginAddress: s.OriginAddress, TargetAddress: s.TargetAddress,
		Peer: s.Peer, Kind: string(s.Kind), ListenerID: s.ListenerID,
		BytesIn: s.BytesIn, BytesOut: s.BytesOut, OpenedAt: s.OpenedAt.UTC(),
	}
}
