package api

import (
	"errors"
	"strconv"
	"time"

	"github.com/p2ptun/p2ptun/node"
	"github.com/p2ptun/p2ptun/spec"
)

// One function per wire type, for the server (package api/server): replies
// are filled from node values, and requests become node requests (tunnel
// requests: parsed specs), field by field. A field renamed or
// removed in node breaks the build here; the wire types stay as they are.

// IdentityFrom is the `id --json` document (and the ready file's) for id.
func IdentityFrom(id node.Identity) Identity {
	return Identity{ID: id.ID, Addresses: id.Addresses, AgentVersion: id.AgentVersion}
}

// ListenerFrom is l as an entry of `ls --json`.
func ListenerFrom(l node.Listener) Listener {
	return Listener{
		Protocol: l.Protocol, ListenAddress: l.ListenAddress, TargetAddress: l.TargetAddress,
		ID: l.ID, Name: l.Name, Kind: string(l.Kind), Peer: l.Peer, AllowedPeers: l.AllowedPeers,
		AllowAll: l.AllowAll, InviteOnly: l.InviteOnly, ReportPeerID: l.ReportPeerID,
		ProxyProtocol: proxyProtocolName(l.ProxyProtocol),
		Balance:       l.Balance, Peers: listenerPeersFrom(l),
		Egress: l.Egress, Permit: l.Permit, Socks: l.Socks,
	}
}

// proxyProtocolName is a PROXY protocol version as requests spell it:
// "v1", "v2", or "" for none.
func proxyProtocolName(v byte) string {
	if v == 0 {
		return ""
	}
	return "v" + strconv.Itoa(int(v))
}

// listenerPeersFrom is the peers of a forward with several, each with its
// state now; nil for any other listener.
func listenerPeersFrom(l node.Listener) []ListenerPeer {
	peers := l.Peers
	if peers == nil && l.PeerStates != nil { // a record, not a listing
		peers = l.PeerStates()
	}
	if len(peers) == 0 {
		return nil
	}
	out := make([]ListenerPeer, len(peers))
	for i, p := range peers {
		out[i] = ListenerPeer{Peer: p.Peer, State: PeerDown, Error: p.Error, RTTMillis: millis(p.RTT)}
		if p.Up {
			out[i].State = PeerUp
		}
	}
	return out
}

// StreamFrom is s, to a peer rtt away, as an entry of `stream ls --json`.
func StreamFrom(s node.StreamInfo, rtt time.Duration) Stream {
	return Stream{
		Path: s.Path, RTTMillis: millis(rtt),
		HandlerID: strconv.FormatUint(s.ID, 10), Protocol: s.Protocol,
		OriginAddress: s.OriginAddress, TargetAddress: s.TargetAddress,
		Peer: s.Peer, Kind: string(s.Kind), ListenerID: s.ListenerID,
		BytesIn: s.BytesIn, BytesOut: s.BytesOut, OpenedAt: s.OpenedAt.UTC(),
		Destination: s.Destination,
	}
}

// PingResultFrom is one round trip of `ping --json`.
func PingResultFrom(p node.PingResult) PingResult {
	return PingResult{RTTMillis: millis(p.RTT), Path: p.Path}
}

// utc is t in UTC, the zero time left zero (omitted on the wire).
func utc(t time.Time) time.Time {
	if t.IsZero() {
		return t
	}
	return t.UTC()
}

func millis(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// ShareFrom is the `share --json` document for s.
func ShareFrom(s node.Share) Share {
	return Share{Ticket: s.Ticket, Peer: s.Peer, Protocol: s.Protocol, Addresses: s.Addresses, Expires: s.Expires}
}

// AccessListFrom is the `access ls --json` document for l.
func AccessListFrom(l node.AccessList) AccessList {
	return AccessList{Allow: l.Allow, Deny: l.Deny}
}

func tunnelStatusFrom(t node.TunnelStatus) TunnelStatus {
	return TunnelStatus{
		Name: t.Name, Kind: t.Kind, Protocol: t.Protocol, Line: t.Line,
		State: t.State, Error: t.Error, ListenerID: t.ListenerID,
		Attempts: t.Attempts, NextRetry: utc(t.NextRetry),
	}
}

// TunnelStatusesFrom keeps a nil list nil: it is null on the wire.
func TunnelStatusesFrom(ts []node.TunnelStatus) []TunnelStatus {
	if ts == nil {
		return nil
	}
	out := make([]TunnelStatus, len(ts))
	for i, t := range ts {
		out[i] = tunnelStatusFrom(t)
	}
	return out
}

// ReloadResultFrom is the `reload --json` document for r.
// Its lists are never nil: `reload --json` prints [] for an empty one.
func ReloadResultFrom(r ReloadReply) ReloadResult {
	return ReloadResult{
		Added: orEmpty(r.Added), Removed: orEmpty(r.Removed), Unchanged: orEmpty(r.Unchanged), Restarted: orEmpty(r.Restarted),
		Failed: orEmpty(TunnelStatusesFrom(r.Failed)), NeedsRestart: r.NeedsRestart,
	}
}

// orEmpty returns s, or an empty slice for nil, which JSON writes as []
// rather than null.
func orEmpty[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// EventFrom is e as a line of `events --json`.
func EventFrom(e node.Event) Event {
	return Event{
		Time: e.Time, Type: e.Type,
		TunnelID: e.TunnelID, Name: e.Name, Kind: e.Kind, Protocol: e.Protocol,
		ListenAddress: e.ListenAddress, TargetAddress: e.TargetAddress,
		StreamID: e.StreamID, OriginAddress: e.OriginAddress, Peer: e.Peer, Path: e.Path,
		BytesIn: e.BytesIn, BytesOut: e.BytesOut, SetupMillis: e.SetupMillis, Millis: e.Millis,
		Destination: e.Destination, Reason: e.Reason, Error: e.Error,
	}
}

// Spec parses r once, into the spec the node takes, with names of peers
// resolved through a.
func (r ListenRequest) Spec(a spec.Aliases) (spec.Spec, error) {
	req := r.toRequest()
	req.Aliases = a
	return spec.ParseListen(req)
}

// Check parses r as the daemon will, so that a client can refuse bad
// input with the daemon's own message before it sends anything. A name of
// a peer is left for the daemon, which knows its names, to resolve.
func (r ListenRequest) Check() error { _, err := r.Spec(nil); return unlessName(err) }

// unlessName is err, or nil if err is only a name the client cannot
// resolve.
func unlessName(err error) error {
	if errors.Is(err, spec.ErrUnknownName) {
		return nil
	}
	return err
}

func (r ListenRequest) toRequest() spec.Request {
	return spec.Request{
		Name: r.Name, Protocol: r.Protocol, Target: r.Target, Allow: r.Allow, AllowAll: r.AllowAll,
		ReportPeerID: r.ReportPeerID, AllowCustomProtocol: r.AllowCustomProtocol,
		InviteOnly: r.InviteOnly, Save: r.Save, ProxyProtocol: r.ProxyProtocol,
		Egress: r.Egress, Permit: r.Permit,
	}
}

// Spec parses r once, into the spec the node takes, with names of peers
// resolved through a.
func (r ForwardRequest) Spec(a spec.Aliases) (spec.Spec, error) {
	req := r.toRequest()
	req.Aliases = a
	return spec.ParseForward(req)
}

// Check parses r as the daemon will (see ListenRequest.Check).
func (r ForwardRequest) Check() error { _, err := r.Spec(nil); return unlessName(err) }

// ForwardRequestOf is the forward request for r, a forward as written (from
// arguments or a ticket, see spec.TicketForward): toRequest's inverse.
func ForwardRequestOf(r spec.Request) ForwardRequest {
	return ForwardRequest{
		Name: r.Name, Protocol: r.Protocol, ListenAddress: r.ListenAddress, Peer: r.Peer,
		AllowCustomProtocol: r.AllowCustomProtocol, Lazy: r.Lazy, AllowLimited: r.AllowLimited,
		Save: r.Save, Addrs: r.Addrs, Invite: r.Invite, Peers: r.Peers, Balance: r.Balance,
		Socks: r.Socks, Gateway: r.Gateway,
	}
}

func (r ForwardRequest) toRequest() spec.Request {
	return spec.Request{
		Name: r.Name, Protocol: r.Protocol, ListenAddress: r.ListenAddress, Peer: r.Peer,
		AllowCustomProtocol: r.AllowCustomProtocol, Lazy: r.Lazy, AllowLimited: r.AllowLimited,
		Save: r.Save, Addrs: r.Addrs, Invite: r.Invite, Peers: r.Peers, Balance: r.Balance,
		Socks: r.Socks, Gateway: r.Gateway,
	}
}

// ToNode is the node's request for r.
func (r CloseRequest) ToNode() node.CloseRequest {
	return node.CloseRequest{All: r.All, Protocol: r.Protocol, ListenAddress: r.ListenAddress, TargetAddress: r.TargetAddress}
}

// Spec parses r once, into the spec the node takes, with names of peers
// resolved through a.
func (r PipeRequest) Spec(a spec.Aliases) (spec.Spec, error) {
	req := r.toRequest()
	req.Aliases = a
	return spec.ParsePipe(req)
}

// Check parses r as the daemon will (see ListenRequest.Check).
func (r PipeRequest) Check() error { _, err := r.Spec(nil); return unlessName(err) }

func (r PipeRequest) toRequest() spec.Request {
	return spec.Request{
		Peer: r.Peer, Protocol: r.Protocol, AllowCustomProtocol: r.AllowCustomProtocol,
		AllowLimited: r.AllowLimited, Addrs: r.Addrs,
	}
}

// ToNode is the node's request for r.
func (r ShareRequest) ToNode() node.ShareRequest {
	return node.ShareRequest{Protocol: r.Protocol, Invite: r.Invite, TTL: r.TTL}
}
