package api

import (
	"testing"

	"github.com/p2ptun/p2ptun/internal/harness"
	"github.com/p2ptun/p2ptun/spec"
)

// TestNamed: replies carry a peer's name beside its ID when it has one,
// and nothing when it has none.
func TestNamed(t *testing.T) {
	a, b, c := harness.NewPeerID(t), harness.NewPeerID(t), harness.NewPeerID(t)
	names := spec.Aliases{"laptop": "/p2p/" + a, "nas": "/ip4/127.0.0.1/tcp/1/p2p/" + b}
	l := Listener{Peer: a, Peers: []ListenerPeer{{Peer: b}, {Peer: c}}}.Named(names)
	if l.PeerName != "laptop" || l.Peers[0].PeerName != "nas" || l.Peers[1].PeerName != "" {
		t.Errorf("Listener.Named = %+v", l)
	}
	if s := (Stream{Peer: b}).Named(names); s.PeerName != "nas" {
		t.Errorf("Stream.Named = %+v", s)
	}
	if e := (Event{Peer: c}).Named(names); e.PeerName != "" {
		t.Errorf("Event.Named = %+v", e)
	}
	list := PeerNamesFrom(names)
	if len(list.Peers) != 2 || list.Peers[0] != (PeerName{Name: "laptop", Addr: "/p2p/" + a, Peer: a}) {
		t.Errorf("PeerNamesFrom = %+v", list)
	}
}
