package p2phost

import (
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/protocol/holepunch"

	"github.com/p2ptun/p2ptun/internal/harness"
)

// TestHolePunchTracerPassesOnEachEnd: of go-libp2p's hole-punching
// events, only the end of an attempt reaches Config.HolePunch, with its
// peer, duration and outcome.
func TestHolePunchTracerPassesOnEachEnd(t *testing.T) {
	type call struct {
		remote peer.ID
		took   time.Duration
		err    error
	}
	var calls []call
	tr := holePunchTracer(func(remote peer.ID, took time.Duration, err error) { calls = append(calls, call{remote, took, err}) })
	remote := harness.NewPeer(t)
	tr.Trace(&holepunch.Event{Remote: remote, Type: holepunch.StartHolePunchEvtT, Evt: &holepunch.StartHolePunchEvt{}})
	tr.Trace(&holepunch.Event{Remote: remote, Type: holepunch.EndHolePunchEvtT, Evt: &holepunch.EndHolePunchEvt{Success: false, EllapsedTime: time.Second, Error: "timeout"}})
	tr.Trace(&holepunch.Event{Remote: remote, Type: holepunch.EndHolePunchEvtT, Evt: &holepunch.EndHolePunchEvt{Success: true, EllapsedTime: time.Millisecond}})
	if len(calls) != 2 {
		t.Fatalf("HolePunch called %d times, want once per ended attempt (2): %+v", len(calls), calls)
	}
	if c := calls[0]; c.remote != remote || c.took != time.Second || c.err == nil || c.err.Error() != "timeout" {
		t.Errorf("failed attempt = %+v, want the peer, 1s and its error", c)
	}
	if c := calls[1]; c.remote != remote || c.took != time.Millisecond || c.err != nil {
		t.Errorf("direct attempt = %+v, want the peer, 1ms and no error", c)
	}
}
