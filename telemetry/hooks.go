package telemetry

import (
	"log/slog"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/p2ptun/p2ptun/registry"
)

// Hooks returns the registries' hooks that report to b and m (nil when
// metrics are off): each tunnel up and down, each stream opened, closed
// and failed, as an event and in the metrics. opened and closed are told
// of each stream first (the node counts its tunnel peers with them). The
// node sets the hooks on its registries.
func Hooks(b *Bus, m *Metrics, opened, closed func(registry.StreamInfo)) (registry.ListenerHooks, registry.Hooks) {
	return registry.ListenerHooks{
			Up:   func(l registry.Listener) { m.TunnelUp(l); b.Emit(TunnelEvent(EventTunnelUp, l)) },
			Down: func(l registry.Listener) { m.TunnelDown(l); b.Emit(TunnelEvent(EventTunnelDown, l)) },
		}, registry.Hooks{
			Opened: func(s registry.StreamInfo) { opened(s); m.StreamOpened(s); b.Emit(StreamOpened(s)) },
			Closed: func(s registry.StreamInfo, err error) {
				closed(s)
				m.StreamClosed(s, err)
				b.Emit(StreamClosed(s, err))
			},
			Failed: func(f registry.Failure) { m.StreamFailed(f); b.Emit(StreamFailed(f)) },
		}
}

// Reservation emits the event of a relay that started holding a
// reservation for the host (err nil) or stopped (err says why): the
// host's Reservation callback.
func (b *Bus) Reservation(relay peer.ID, err error) { b.Emit(RelayReservation(relay.String(), err)) }

// HolePunched emits the event of an attempt to reach remote directly:
// the host's HolePunch callback.
func (b *Bus) HolePunched(remote peer.ID, took time.Duration, err error) {
	b.Emit(HolePunch(remote.String(), took, err))
}

// ForwardPeer returns what the forward rec calls when one of its peers
// goes down (err says why) or comes back up: the event, the metric and a
// log line. The forward calls it under its own lock, with rec's fields
// set: it neither blocks nor lists the listeners.
func ForwardPeer(b *Bus, m *Metrics, log *slog.Logger, rec *registry.Listener) func(p peer.ID, up bool, err error) {
	return func(p peer.ID, up bool, err error) {
		l, ps := *rec, p.String()
		if up {
			log.Info("forward peer up: new connections may go to it", "proto", l.Protocol, "laddr", l.ListenAddress, "peer", ps)
		} else {
			m.ForwardPeerDown(l, ps)
			log.Warn("forward peer down: new connections go to the others", "proto", l.Protocol, "laddr", l.ListenAddress, "peer", ps, "err", err)
		}
		b.Emit(ForwardPeerEvent(l, ps, err))
	}
}
