package api

import (
	"strconv"
	"time"

	"github.com/p2ptun/p2ptun/node"
	"github.com/p2ptun/p2ptun/spec"
)

// One function per wire type: replies are filled from node values, and
// requests become node requests (tunnel requests: parsed specs), field by
// field. A field renamed or
// removed in node breaks the build here; the wire types stay as they are.

// IdentityFrom is the `id --json` document (and the ready file's) for id.
func IdentityFrom(id node.Identity) Identity {
	return Identity{ID: id.ID, Addresses: id.Addresses, AgentVersion: id.AgentVersion}
}

func listenerFrom(l node.Listener) Listener {
	return Listener{
		Protocol: l.Protocol, ListenAddress: l.ListenAddress, TargetAddress: l.TargetAddress,
		ID: l.ID, Name: l.Name, Kind: string(l.Kind), Peer: l.Peer, AllowedPeers: l.AllowedPeers,
		AllowAll: l.AllowAll, InviteOnly: l.InviteOnly, ReportPeerID: l.ReportPeerID,
		Egress: l.Egress, Permit: l.Permit, Socks: l.Socks,
	}
}

func streamFrom(s node.StreamInfo, rtt time.Duration) Stream {
	return Stream{
		Path: s.Path, RTTMillis: millis(rtt),
		HandlerID: strconv.FormatUint(s.ID, 10), Protocol: s.Protocol,
		OriginAddress: s.OriginAddress, TargetAddress: s.TargetAddress,
		Peer: s.Peer, Kind: string(s.Kind), ListenerID: s.ListenerID,
		BytesIn: s.BytesIn, BytesOut: s.BytesOut, OpenedAt: s.OpenedAt.UTC(),
		Destination: s.Destination,
	}
}

func pingResultFrom(p node.PingResult) PingResult {
	return PingResult{RTTMillis: millis(p.RTT), Path: p.Path}
}

func millis(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func shareFrom(s node.Share) Share {
	return Share{Ticket: s.Ticket, Peer: s.Peer, Protocol: s.Protocol, Addresses: s.Addresses, Expires: s.Expires}
}

func accessListFrom(l node.AccessList) AccessList {
	return AccessList{Allow: l.Allow, Deny: l.Deny}
}

func tunnelStatusFrom(t node.TunnelStatus) TunnelStatus {
	return TunnelStatus{
		Name: t.Name, Kind: t.Kind, Protocol: t.Protocol, Line: t.Line,
		State: t.State, Error: t.Error, ListenerID: t.ListenerID,
	}
}

// tunnelStatusesFrom keeps a nil list nil: it is null on the wire.
func tunnelStatusesFrom(ts []node.TunnelStatus) []TunnelStatus {
	if ts == nil {
		return nil
	}
	out := make([]TunnelStatus, len(ts))
	for i, t := range ts {
		out[i] = tunnelStatusFrom(t)
	}
	return out
}

func reloadResultFrom(r ReloadReply) ReloadResult {
	return ReloadResult{
		Added: r.Added, Removed: r.Removed, Unchanged: r.Unchanged, Restarted: r.Restarted,
		Failed: tunnelStatusesFrom(r.Failed), NeedsRestart: r.NeedsRestart,
	}
}

func eventFrom(e node.Event) Event {
	return Event{
		Time: e.Time, Type: e.Type,
		TunnelID: e.TunnelID, Name: e.Name, Kind: e.Kind, Protocol: e.Protocol,
		ListenAddress: e.ListenAddress, TargetAddress: e.TargetAddress,
		StreamID: e.StreamID, OriginAddress: e.OriginAddress, Peer: e.Peer, Path: e.Path,
		BytesIn: e.BytesIn, BytesOut: e.BytesOut, SetupMillis: e.SetupMillis, Millis: e.Millis,
		Reason: e.Reason, Error: e.Error,
	}
}

// toSpec parses r once, into the spec the node takes.
func (r ListenRequest) toSpec() (spec.Spec, error) { return spec.ParseListen(r.toRequest()) }

// Check parses r as the daemon will, so that a client can refuse bad
// input with the daemon's own message before it sends anything.
func (r ListenRequest) Check() error { _, err := r.toSpec(); return err }

func (r ListenRequest) toRequest() spec.Request {
	return spec.Request{
		Name: r.Name, Protocol: r.Protocol, Target: r.Target, Allow: r.Allow, AllowAll: r.AllowAll,
		ReportPeerID: r.ReportPeerID, AllowCustomProtocol: r.AllowCustomProtocol,
		InviteOnly: r.InviteOnly, Save: r.Save,
		Egress: r.Egress, Permit: r.Permit,
	}
}

// toSpec parses r once, into the spec the node takes.
func (r ForwardRequest) toSpec() (spec.Spec, error) { return spec.ParseForward(r.toRequest()) }

// Check parses r as the daemon will (see ListenRequest.Check).
func (r ForwardRequest) Check() error { _, err := r.toSpec(); return err }

// ForwardRequestOf is the forward request for r, a forward as written (from
// arguments or a ticket, see spec.TicketForward): toRequest's inverse.
func ForwardRequestOf(r spec.Request) ForwardRequest {
	return ForwardRequest{
		Name: r.Name, Protocol: r.Protocol, ListenAddress: r.ListenAddress, Peer: r.Peer,
		AllowCustomProtocol: r.AllowCustomProtocol, Lazy: r.Lazy, AllowLimited: r.AllowLimited,
		Save: r.Save, Addrs: r.Addrs, Invite: r.Invite,
		Socks: r.Socks, Gateway: r.Gateway,
	}
}

func (r ForwardRequest) toRequest() spec.Request {
	return spec.Request{
		Name: r.Name, Protocol: r.Protocol, ListenAddress: r.ListenAddress, Peer: r.Peer,
		AllowCustomProtocol: r.AllowCustomProtocol, Lazy: r.Lazy, AllowLimited: r.AllowLimited,
		Save: r.Save, Addrs: r.Addrs, Invite: r.Invite,
		Socks: r.Socks, Gateway: r.Gateway,
	}
}

func (r CloseRequest) toNode() node.CloseRequest {
	return node.CloseRequest{All: r.All, Protocol: r.Protocol, ListenAddress: r.ListenAddress, TargetAddress: r.TargetAddress}
}

// toSpec parses r once, into the spec the node takes.
func (r PipeRequest) toSpec() (spec.Spec, error) { return spec.ParsePipe(r.toRequest()) }

// Check parses r as the daemon will (see ListenRequest.Check).
func (r PipeRequest) Check() error { _, err := r.toSpec(); return err }

func (r PipeRequest) toRequest() spec.Request {
	return spec.Request{
		Peer: r.Peer, Protocol: r.Protocol, AllowCustomProtocol: r.AllowCustomProtocol,
		AllowLimited: r.AllowLimited, Addrs: r.Addrs,
	}
}

func (r ShareRequest) toNode() node.ShareRequest {
	return node.ShareRequest{Protocol: r.Protocol, Invite: r.Invite, TTL: r.TTL}
}
