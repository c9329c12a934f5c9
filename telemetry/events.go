package telemetry

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/p2ptun/p2ptun/oneline"
	"github.com/p2ptun/p2ptun/refusal"
	"github.com/p2ptun/p2ptun/registry"
	"github.com/p2ptun/p2ptun/streams"
)

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
	// A relay (--relay, [network] relays) holds a reservation for this
	// node: it is reachable through the relay. Lost: it no longer does
	// (refreshing the reservation failed, in Error); it is retried.
	EventRelayHeld = "relay_reservation_held"
	EventRelayLost = "relay_reservation_lost"
	// An attempt to hole-punch a direct connection to a peer reached
	// over a relay ended: Reason "direct" or "failed" (Error says why).
	EventHolePunch = "hole_punch"
	// EventForwardPeerDown and EventForwardPeerUp: one peer of a forward
	// with several went down (Error says why) or came back up (Peer).
	EventForwardPeerDown = "forward_peer_down"
	EventForwardPeerUp   = "forward_peer_up"
	// EventLost ends a subscription that fell too far behind: the
	// subscriber missed events and should resubscribe.
	EventLost = "events_lost"
)

// Event is one lifecycle event, a line of `p2ptun events --json`. Only the
// fields that apply to its Type are set.
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
	// "closing", "stream_limit" (package refusal).
	Reason string `json:",omitempty"`
	Error  string `json:",omitempty"`
}

// Buffer is how many events a subscriber may fall behind before it is
// cut off with EventLost.
const Buffer = 4096

// Bus fans events out to subscribers without ever blocking the emitter.
// The zero Bus is ready to use.
type Bus struct {
	mu   sync.Mutex
	subs map[chan Event]bool
}

// Subscribe returns a channel of events from now on, and a cancel function
// that ends the subscription and closes the channel. A subscriber that
// falls Buffer events behind gets EventLost and its channel closed.
func (b *Bus) Subscribe() (<-chan Event, func()) {
	ch := make(chan Event, Buffer+1) // +1 leaves room for EventLost
	b.mu.Lock()
	if b.subs == nil {
		b.subs = make(map[chan Event]bool)
	}
	b.subs[ch] = true
	b.mu.Unlock()
	return ch, func() {
		b.mu.Lock()
		defer b.mu.Unlock()
		if b.subs[ch] {
			delete(b.subs, ch)
			close(ch)
		}
	}
}

// Emit sends ev to every subscriber, stamping its time. It never blocks.
func (b *Bus) Emit(ev Event) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.subs) == 0 {
		return
	}
	ev.Time = time.Now().UTC()
	for ch := range b.subs {
		if len(ch) >= Buffer {
			ch <- Event{Time: ev.Time, Type: EventLost}
			delete(b.subs, ch)
			close(ch)
			continue
		}
		ch <- ev
	}
}

// Close ends every subscription. Subscriptions made after it work as
// before; the node closes its bus last.
func (b *Bus) Close() {
	b.mu.Lock()
	defer b.mu.Unlock()
	for ch := range b.subs {
		delete(b.subs, ch)
		close(ch)
	}
}

// TunnelEvent is a tunnel_* event of typ for the tunnel l.
func TunnelEvent(typ string, l registry.Listener) Event {
	return Event{
		Type: typ, TunnelID: l.ID, Name: l.Name, Kind: string(l.Kind), Protocol: l.Protocol,
		ListenAddress: l.ListenAddress, TargetAddress: l.TargetAddress, Peer: l.Peer,
	}
}

// RelayReservation is the relay_reservation_held event of relay (err
// nil), or its relay_reservation_lost event, which err says why.
func RelayReservation(relay string, err error) Event {
	if err == nil {
		return Event{Type: EventRelayHeld, Peer: relay}
	}
	return Event{Type: EventRelayLost, Peer: relay, Error: oneline.Error(err)}
}

// Reload is the reload event of a reload that added, removed, left,
// restarted and failed to open so many config tunnels; needsRestart
// names the settings that apply only after a restart.
func Reload(added, removed, unchanged, restarted, failed int, needsRestart []string) Event {
	reason := fmt.Sprintf("added %d, removed %d, unchanged %d, restarted %d, failed %d", added, removed, unchanged, restarted, failed)
	if len(needsRestart) > 0 {
		reason += "; restart to apply " + strings.Join(needsRestart, ", ")
	}
	return Event{Type: EventReload, Reason: reason}
}

// HolePunch is the hole_punch event of an attempt to reach peer directly
// that took took and ended with err (nil: a direct connection).
func HolePunch(peer string, took time.Duration, err error) Event {
	ev := Event{Type: EventHolePunch, Peer: peer, Millis: millis(took), Reason: "direct"}
	if err != nil {
		ev.Reason, ev.Error = "failed", oneline.Error(err)
	}
	return ev
}

// ForwardPeerEvent is the forward_peer_down (err set) or forward_peer_up
// event of peer p of the forward l.
func ForwardPeerEvent(l registry.Listener, p string, err error) Event {
	ev := TunnelEvent(EventForwardPeerUp, l)
	ev.Peer = p
	if err != nil {
		ev.Type, ev.Error = EventForwardPeerDown, oneline.Error(err)
	}
	return ev
}

// StreamOpened is the stream_open event of s.
func StreamOpened(s registry.StreamInfo) Event { return streamEvent(EventStreamOpen, s) }

// StreamClosed is the stream_close event of s, which ended with err (nil
// for a clean end on both sides): how long it lived and why it ended.
func StreamClosed(s registry.StreamInfo, err error) Event {
	ev := streamEvent(EventStreamClose, s)
	ev.Millis = millis(time.Since(s.OpenedAt))
	switch ev.Reason = endCause(err); ev.Reason {
	case "eof", "closed":
	case "reset":
		ev.Error = oneline.Error(err)
	default:
		// The peer's listener refused the stream once it was open.
		ev.Error = refusal.Of(err).Error()
	}
	return ev
}

// StreamFailed is the stream_failed event of a connection that never
// became a stream.
func StreamFailed(f registry.Failure) Event {
	ev := Event{
		Type: EventStreamFailed, TunnelID: f.ListenerID, Kind: string(f.Kind),
		Protocol: f.Protocol, Peer: f.Peer, Reason: f.Cause, Destination: f.Destination,
	}
	if f.Err != nil {
		ev.Error = oneline.Error(f.Err)
	}
	return ev
}

func streamEvent(typ string, s registry.StreamInfo) Event {
	return Event{
		Type: typ, TunnelID: s.ListenerID, Kind: string(s.Kind), Protocol: s.Protocol,
		StreamID: s.ID, OriginAddress: s.OriginAddress, TargetAddress: s.TargetAddress,
		Peer: s.Peer, Path: s.Path, BytesIn: s.BytesIn, BytesOut: s.BytesOut,
		SetupMillis: millis(s.Setup), Destination: s.Destination,
	}
}

func millis(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// endCause is why a stream that ended with err ended: "eof" (nil, both
// sides finished), "closed" (aborted by p2ptun), the cause a refusing
// peer sent, or "reset". Events report it as Reason; metrics count every
// one but eof and closed.
func endCause(err error) string {
	switch r := refusal.Of(err); {
	case err == nil:
		return "eof"
	case errors.Is(err, streams.ErrAborted):
		return "closed"
	case r != nil:
		return string(r.Cause)
	}
	return "reset"
}
