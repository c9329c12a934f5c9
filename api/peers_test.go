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
	listen := Listener{Kind: "listen", AllowedPeers: []string{a, c}}.Named(names)
	if len(listen.AllowedPeerNames) != 1 || listen.AllowedPeerNames[a] != "laptop" {
		t.Errorf("Listener.Named: AllowedPeerNames = %v, want only %s: laptop", listen.AllowedPeerNames, a)
	}
	ov := Overview{
		Tunnels: []TunnelOverview{{Peers: []TunnelPeer{{Peer: c}, {Peer: b}}}},
		Peers:   []PeerStatus{{Peer: a}, {Peer: c}},
	}
	named := ov.Named(names)
	if tp := named.Tunnels[0].Peers; tp[0].PeerName != "" || tp[1].PeerName != "nas" {
		t.Errorf("Overview.Named: tunnel peers = %+v", tp)
	}
	if ps := named.Peers; ps[0].PeerName != "laptop" || ps[1].PeerName != "" {
		t.Errorf("Overview.Named: peers = %+v", ps)
	}
	if ov.Peers[0].PeerName != "" || ov.Tunnels[0].Peers[1].PeerName != "" {
		t.Errorf("Overview.Named changed its receiver: %+v", ov)
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
