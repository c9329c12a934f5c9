package telemetry

import (
	"errors"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/p2ptun/p2ptun/registry"
)

// TestForwardPeerMetrics: a forward with several peers has a gauge per
// peer, 1 while it is up, and a counter of its peer going down, dropped
// with the tunnel; its peer changes are events of their own.
func TestForwardPeerMetrics(t *testing.T) {
	l := registry.Listener{ID: 4, Kind: registry.KindForward, Protocol: "/x/web", ListenAddress: "/ip4/127.0.0.1/tcp/9000", Balance: "failover"}
	var tunnels []registry.Listener
	m := NewMetrics(func() []registry.StreamInfo { return nil }, func() []registry.Listener { return tunnels }, func() int { return 0 })
	reg := prometheus.NewRegistry()
	if err := m.Register(reg); err != nil {
		t.Fatal(err)
	}
	m.TunnelUp(l)
	l.Peers = []registry.ListenerPeer{{Peer: "A", Up: false, Error: "disconnected"}, {Peer: "B", Up: true}}
	tunnels = []registry.Listener{l}
	m.ForwardPeerDown(l, "A")
	m.ForwardPeerDown(l, "A")
	for _, c := range []struct {
		name, peer string
		want       float64
	}{
		{"p2ptun_forward_peer_up", "A", 0},
		{"p2ptun_forward_peer_up", "B", 1},
		{"p2ptun_forward_peer_down_total", "A", 2},
	} {
		if v := value(t, reg, c.name, "tunnel", "4", "name", "forward /x/web /ip4/127.0.0.1/tcp/9000", "kind", "forward", "protocol", "/x/web", "peer", c.peer); v != c.want {
			t.Errorf("%s{peer=%s} = %v, want %v", c.name, c.peer, v, c.want)
		}
	}
	tunnels = nil
	m.TunnelDown(l)
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		if f.GetName() == "p2ptun_forward_peer_down_total" || f.GetName() == "p2ptun_forward_peer_up" {
			t.Errorf("%s still reported after the tunnel went down: %v", f.GetName(), f.GetMetric())
		}
	}

	if ev := ForwardPeerEvent(l, "A", errors.New("disconnected")); ev.Type != EventForwardPeerDown || ev.Peer != "A" || ev.Error != "disconnected" || ev.TunnelID != 4 {
		t.Errorf("down event = %+v", ev)
	}
	if ev := ForwardPeerEvent(l, "A", nil); ev.Type != EventForwardPeerUp || ev.Peer != "A" || ev.Error != "" {
		t.Errorf("up event = %+v", ev)
	}
}
