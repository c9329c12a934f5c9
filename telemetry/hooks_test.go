package telemetry

import (
	"testing"

	"github.com/p2ptun/p2ptun/registry"
)

// The hooks report each tunnel and stream change as its event, with
// metrics off, and tell the node's own hooks of each stream first.
func TestHooksEmitAndTellTheNode(t *testing.T) {
	var b Bus
	events, cancel := b.Subscribe()
	defer cancel()
	var told []string
	lh, sh := Hooks(&b, nil,
		func(s registry.StreamInfo) { told = append(told, "opened "+s.Peer) },
		func(s registry.StreamInfo) { told = append(told, "closed "+s.Peer) })
	l := registry.Listener{ID: 1, Kind: registry.KindForward, Protocol: "/x/web"}
	s := registry.StreamInfo{Peer: "12D3KooWpeer", Protocol: "/x/web"}
	lh.Up(l)
	sh.Opened(s)
	sh.Closed(s, nil)
	sh.Failed(registry.Failure{Protocol: "/x/web"})
	lh.Down(l)
	want := []string{EventTunnelUp, EventStreamOpen, EventStreamClose, EventStreamFailed, EventTunnelDown}
	for _, typ := range want {
		if ev := <-events; ev.Type != typ {
			t.Fatalf("event %q, want %q (in %v)", ev.Type, typ, want)
		}
	}
	if len(told) != 2 || told[0] != "opened 12D3KooWpeer" || told[1] != "closed 12D3KooWpeer" {
		t.Fatalf("the node was told %v, want the stream opened then closed", told)
	}
}
