package api

import (
	"cmp"
	"context"
	"net/http"
	"slices"
	"time"

	"github.com/p2ptun/p2ptun/node"
)

// Overview states, the State of a TunnelOverview: a config tunnel's
// (TunnelStatus's, with "failed" split in two) or "up" for a runtime one.
const (
	OverviewStarting = TunnelStarting
	OverviewUp       = TunnelUp
	OverviewRetrying = "retrying" // the last attempt failed; NextRetry says when the next is
	OverviewFailed   = TunnelFailed
	OverviewClosed   = TunnelClosed
)

// Overview is the body of GET /v0/overview and of `p2ptun status --json`:
// every tunnel, from the config file or made at runtime, then the peers.
type Overview struct {
	// Ready is true once the daemon has made its first attempt at every
	// config tunnel.
	Ready   bool
	Tunnels []TunnelOverview
	Peers   []PeerStatus
}

// TunnelOverview is one tunnel of `p2ptun status`.
type TunnelOverview struct {
	// Name is the tunnel's name or, without one, what it is ("listen
	// PROTOCOL", "forward PROTOCOL LISTEN-ADDRESS"), as the metrics' name
	// label has it.
	Name     string
	Kind     string // "listen" or "forward"
	Protocol string
	// Config is true for a tunnel of the config file (Line is where its
	// table starts), false for one made at runtime.
	Config bool
	Line   int `json:",omitempty"`
	// State is starting, up, retrying, failed (for good: no retry can fix
	// it) or closed (closed at runtime; back on reload). A runtime tunnel
	// is up: it exists only while it is.
	State string
	// Error is why the last attempt failed, Attempts how many did, and
	// NextRetry when the next one is due (retrying only).
	Error     string    `json:",omitempty"`
	Attempts  int       `json:",omitempty"`
	NextRetry time.Time `json:",omitzero"`
	// ID, the addresses and the live streams are those of the running
	// tunnel: set only when it is up.
	ID            uint64 `json:",omitempty"`
	ListenAddress string `json:",omitempty"`
	TargetAddress string `json:",omitempty"`
	// Streams counts its live streams; BytesIn and BytesOut sum what they
	// moved so far (closed streams' bytes are in the metrics).
	Streams  int
	BytesIn  int64
	BytesOut int64
	// Peers are the peers it is for, when up: a forward's peer (or
	// peers, in order), a listener's allowlist; each with its name in
	// [peers], if it has one.
	Peers []TunnelPeer `json:",omitempty"`
}

// TunnelPeer is one peer of a tunnel in `p2ptun status`.
type TunnelPeer struct {
	Peer     string
	PeerName string `json:",omitempty"` // Peer's name in [peers], if it has one
}

// PeerStatus is one peer of `p2ptun status`: connected now, or named by a
// tunnel.
type PeerStatus struct {
	Peer      string
	PeerName  string `json:",omitempty"` // Peer's name in [peers], if it has one
	Connected bool
	Path      string  // "direct", "relayed via <relay peer ID>" or "not connected"
	RTTMillis float64 // smoothed round-trip time; 0 if not yet measured
	Tunnel    bool    `json:",omitempty"` // a tunnel of this daemon names it
}

// Overview returns every tunnel and peer of the daemon.
func (c *Client) Overview(ctx context.Context) (Overview, error) {
	return call[Overview](ctx, c, http.MethodGet, "/v0/overview", nil)
}

// OverviewFrom is the `status --json` document: the config tunnels ts in
// config order, each with its listener among ls when up, then the
// listeners no config tunnel owns (made at runtime) in ID order, each with
// its live streams among ss; then the peers ps. Lists are never null.
func OverviewFrom(ready bool, ts []node.TunnelStatus, ls []node.Listener, ss []node.StreamInfo, ps []node.PeerState) Overview {
	type sums struct {
		n       int
		in, out int64
	}
	live := make(map[uint64]sums)
	for _, s := range ss {
		x := live[s.ListenerID]
		x.n++
		x.in += s.BytesIn
		x.out += s.BytesOut
		live[s.ListenerID] = x
	}
	byID := make(map[uint64]node.Listener, len(ls))
	for _, l := range ls {
		byID[l.ID] = l
	}
	running := func(o *TunnelOverview, l node.Listener) {
		x := live[l.ID]
		o.ID, o.ListenAddress, o.TargetAddress = l.ID, l.ListenAddress, l.TargetAddress
		o.Streams, o.BytesIn, o.BytesOut = x.n, x.in, x.out
		o.Peers = tunnelPeers(l)
	}
	out := Overview{Ready: ready, Tunnels: []TunnelOverview{}, Peers: []PeerStatus{}}
	owned := make(map[uint64]bool)
	for _, t := range ts {
		o := TunnelOverview{
			Name: t.Name, Kind: t.Kind, Protocol: t.Protocol, Config: true, Line: t.Line,
			State: t.State, Error: t.Error, Attempts: t.Attempts, NextRetry: utc(t.NextRetry),
		}
		if t.State == TunnelFailed && !t.NextRetry.IsZero() {
			o.State = OverviewRetrying
		}
		if l, ok := byID[t.ListenerID]; ok && t.ListenerID != 0 {
			owned[l.ID] = true
			running(&o, l)
		}
		out.Tunnels = append(out.Tunnels, o)
	}
	ls = slices.Clone(ls)
	slices.SortFunc(ls, func(a, b node.Listener) int { return cmp.Compare(a.ID, b.ID) })
	for _, l := range ls {
		if owned[l.ID] {
			continue
		}
		o := TunnelOverview{Name: l.Label(), Kind: string(l.Kind), Protocol: l.Protocol, State: OverviewUp}
		running(&o, l)
		out.Tunnels = append(out.Tunnels, o)
	}
	for _, p := range ps {
		out.Peers = append(out.Peers, PeerStatus{Peer: p.Peer, Connected: p.Connected, Path: p.Path, RTTMillis: millis(p.RTT), Tunnel: p.Tunnel})
	}
	return out
}

// tunnelPeers are the peers l is for: a forward's peers in order (or its
// one peer), a listener's allowlist; nil for none.
func tunnelPeers(l node.Listener) []TunnelPeer {
	ids := l.AllowedPeers
	switch {
	case string(l.Kind) == "listen":
	case len(l.Peers) > 0:
		ids = make([]string, len(l.Peers))
		for i, p := range l.Peers {
			ids[i] = p.Peer
		}
	case l.Peer != "":
		ids = []string{l.Peer}
	}
	var out []TunnelPeer
	for _, id := range ids {
		out = append(out, TunnelPeer{Peer: id})
	}
	return out
}
