package telemetry

import (
	"context"

	"github.com/libp2p/go-libp2p/core/event"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
)

// WatchPeers turns libp2p's connectedness changes, from sub (a
// subscription to event.EvtPeerConnectednessChanged), into peer events
// on b until ctx ends or sub closes; path names a connected peer's path.
// It closes sub before it returns.
func (b *Bus) WatchPeers(ctx context.Context, sub event.Subscription, path func(peer.ID) string) {
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
				b.Emit(Event{Type: EventPeerConnected, Peer: ch.Peer.String(), Path: path(ch.Peer)})
			case network.NotConnected:
				b.Emit(Event{Type: EventPeerDisconnected, Peer: ch.Peer.String()})
			}
		}
	}
}
