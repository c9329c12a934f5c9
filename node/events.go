package node

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/event"
	"github.com/libp2p/go-libp2p/core/network"

	"github.com/p2ptun/p2ptun/forward"
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
	Peer          string  `json:",omitempty"` // also peer_*
	Path          string  `json:",omitempty"` // also peer_connected
	BytesIn       int64   `json:",omitempty"`
	BytesOut      int64   `json:",omitempty"`
	SetupMillis   float64 `json:",omitempty"`
	Millis        float64 `json:",omitempty"` // stream_close: how long it lived
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

// eventBuffer is how many events a subscriber may fall behind before it is
// cut off with EventLost.
const eventBuffer = 4096

// bus fans events out to subscribers without ever blocking the emitter.
type bus struct {
	mu   sync.Mutex
	subs map[chan Event]bool
}

// Subscribe returns a channel of events from now on, and a cancel function
// that ends the subscription and closes the channel. A subscriber that
// falls eventBuffer events behind gets EventLost and its channel closed.
func (n *Node) Subscribe() (<-chan Event, func()) {
	ch := make(chan Event, eventBuffer+1) // +1 leaves room for EventLost
	n.events.mu.Lock()
	if n.events.subs == nil {
		n.events.subs = make(map[chan Event]bool)
	}
	n.events.subs[ch] = true
	n.events.mu.Unlock()
	return ch, func() {
		n.events.mu.Lock()
		defer n.events.mu.Unlock()
		if n.events.subs[ch] {
			delete(n.events.subs, ch)
			close(ch)
		}
	}
}

// emit sends ev to every subscriber, stamping its time.
func (n *Node) emit(ev Event) {
	n.events.mu.Lock()
	defer n.events.mu.Unlock()
	if len(n.events.subs) == 0 {
		return
	}
	ev.Time = time.Now().UTC()
	for ch := range n.events.subs {
		if len(ch) >= eventBuffer {
			ch <- Event{Time: ev.Time, Type: EventLost}
			delete(n.events.subs, ch)
			close(ch)
			continue
		}
		ch <- ev
	}
}

// closeSubscribers ends every subscription (at Close).
func (n *Node) closeSubscribers() {
	n.events.mu.Lock()
	defer n.events.mu.Unlock()
	for ch := range n.events.subs {
		delete(n.events.subs, ch)
		close(ch)
	}
}

func tunnelEvent(typ string, l registry.Listener) Event {
	return Event{
		Type: typ, TunnelID: l.ID, Name: l.Name, Kind: string(l.Kind), Protocol: l.Protocol,
		ListenAddress: l.ListenAddress, TargetAddress: l.TargetAddress, Peer: l.Peer,
	}
}

func streamEvent(typ string, s registry.StreamInfo) Event {
	return Event{
		Type: typ, TunnelID: s.ListenerID, Kind: string(s.Kind), Protocol: s.Protocol,
		StreamID: s.ID, OriginAddress: s.OriginAddress, TargetAddress: s.TargetAddress,
		Peer: s.Peer, Path: s.Path, BytesIn: s.BytesIn, BytesOut: s.BytesOut,
		SetupMillis: millis(s.Setup),
	}
}

func millis(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// hooks connects the registries to the event bus, the metrics and the
// connection manager's protection of tunnel peers.
func (n *Node) hooks() {
	n.listeners.SetHooks(registry.ListenerHooks{
		Up:   func(l registry.Listener) { n.metrics.tunnelUp(l); n.emit(tunnelEvent(EventTunnelUp, l)) },
		Down: func(l registry.Listener) { n.metrics.tunnelDown(l); n.emit(tunnelEvent(EventTunnelDown, l)) },
	})
	n.streams.SetHooks(registry.Hooks{
		Opened: func(s registry.StreamInfo) {
			n.tunnelOpened(s.Peer)
			n.metrics.streamOpened(s)
			n.emit(streamEvent(EventStreamOpen, s))
		},
		Closed: func(s registry.StreamInfo, err error) {
			n.tunnelClosed(s.Peer)
			n.metrics.streamClosed(s, err)
			ev := streamEvent(EventStreamClose, s)
			ev.Millis = millis(time.Since(s.OpenedAt))
			r := refusal.Of(err)
			switch {
			case err == nil:
				ev.Reason = "eof"
			case errors.Is(err, streams.ErrAborted):
				ev.Reason = "closed"
			case r != nil:
				// The peer's listener refused the stream once it was open.
				ev.Reason, ev.Error = string(r.Cause), r.Error()
			default:
				ev.Reason, ev.Error = "reset", forward.OneLine(err)
			}
			n.emit(ev)
		},
		Failed: func(f registry.Failure) {
			n.metrics.streamFailed(f)
			ev := Event{
				Type: EventStreamFailed, TunnelID: f.ListenerID, Kind: string(f.Kind),
				Protocol: f.Protocol, Peer: f.Peer, Reason: f.Cause,
			}
			if f.Err != nil {
				ev.Error = forward.OneLine(f.Err)
			}
			n.emit(ev)
		},
	})
}

// watchPeers turns libp2p's connectedness changes into peer events until
// ctx ends.
func (n *Node) watchPeers(ctx context.Context, sub event.Subscription) {
	defer sub.Close()
	for {
		select {
		case <-ctx.Done():
			return
		case e, ok := <-sub.Out():
			if !ok {
				return
			}
			ch := e.(event.EvtPeerConnectednessChanged)
			switch ch.Connectedness {
			case network.Connected, network.Limited:
				n.emit(Event{Type: EventPeerConnected, Peer: ch.Peer.String(), Path: n.path(ch.Peer)})
			case network.NotConnected:
				n.emit(Event{Type: EventPeerDisconnected, Peer: ch.Peer.String()})
			}
		}
	}
}

// Reloaded emits a reload event summarising what a reload changed.
func (n *Node) Reloaded(res ApplyResult, needsRestart []string) {
	reason := fmt.Sprintf("added %d, removed %d, unchanged %d, restarted %d, failed %d",
		len(res.Added), len(res.Removed), len(res.Unchanged), len(res.Restarted), len(res.Failed))
	if len(needsRestart) > 0 {
		reason += "; restart to apply " + strings.Join(needsRestart, ", ")
	}
	n.emit(Event{Type: EventReload, Reason: reason})
}
