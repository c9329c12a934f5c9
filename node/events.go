package node

import (
	"github.com/p2ptun/p2ptun/registry"
	"github.com/p2ptun/p2ptun/telemetry"
)

// Event is one lifecycle event, a line of `p2ptun events --json`
// (telemetry.Event).
type Event = telemetry.Event

// Event types, the Type field of an Event (telemetry's).
const (
	EventTunnelUp         = telemetry.EventTunnelUp
	EventTunnelDown       = telemetry.EventTunnelDown
	EventTunnelFailed     = telemetry.EventTunnelFailed
	EventStreamOpen       = telemetry.EventStreamOpen
	EventStreamClose      = telemetry.EventStreamClose
	EventStreamFailed     = telemetry.EventStreamFailed
	EventPeerConnected    = telemetry.EventPeerConnected
	EventPeerDisconnected = telemetry.EventPeerDisconnected
	EventReload           = telemetry.EventReload
	EventRelayHeld        = telemetry.EventRelayHeld
	EventRelayLost        = telemetry.EventRelayLost
	EventHolePunch        = telemetry.EventHolePunch
	EventForwardPeerDown  = telemetry.EventForwardPeerDown
	EventForwardPeerUp    = telemetry.EventForwardPeerUp
	EventLost             = telemetry.EventLost
)

// Subscribe returns a channel of the node's events from now on, and a
// cancel function that ends the subscription and closes the channel. A
// subscriber that falls telemetry.Buffer events behind gets EventLost and
// its channel closed; Close ends every subscription.
func (n *Node) Subscribe() (<-chan Event, func()) { return n.events.Subscribe() }

// emit sends ev to every subscriber, stamping its time.
func (n *Node) emit(ev Event) { n.events.Emit(ev) }

// hooks connects the registries to the event bus, the metrics and the
// host's count of tunnel peers (protected from trimming, kept alive).
func (n *Node) hooks() {
	lh, sh := telemetry.Hooks(&n.events, n.metrics,
		func(s registry.StreamInfo) { tunnelPeer(s, n.p2p.TunnelOpened) },
		func(s registry.StreamInfo) { tunnelPeer(s, n.p2p.TunnelClosed) })
	n.listeners.SetHooks(lh)
	n.streams.SetHooks(sh)
}

// Reloaded emits a reload event summarising what a reload changed.
func (n *Node) Reloaded(res ApplyResult, needsRestart []string) {
	n.emit(telemetry.Reload(len(res.Added), len(res.Removed), len(res.Unchanged), len(res.Restarted), len(res.Failed), needsRestart))
}
