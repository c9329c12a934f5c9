package node

import (
	"context"
	"io"
	"testing"
	"time"
)

// next returns the next event of one of the wanted types from ch, skipping
// others, or fails the test after a generous deadline.
func next(t *testing.T, ch <-chan Event, types ...string) Event {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case ev, ok := <-ch:
			if !ok {
				t.Fatalf("event channel closed while waiting for %v", types)
			}
			for _, typ := range types {
				if ev.Type == typ {
					return ev
				}
			}
		case <-deadline:
			t.Fatalf("no %v event within 10s", types)
		}
	}
}

func TestEventsFollowATunnelsLife(t *testing.T) {
	a, b := newNode(t), newNode(t)
	aEvents, cancelA := a.Subscribe()
	defer cancelA()
	bEvents, cancelB := b.Subscribe()
	defer cancelB()

	addr := tunnel(t, a, b, "/x/events", server(t, echo))
	up := next(t, bEvents, EventTunnelUp)
	if up.Kind != "listen" || up.Protocol != "/x/events" || up.TunnelID == 0 || up.Time.IsZero() {
		t.Errorf("b's tunnel_up = %+v, want the listen on /x/events with an ID and a time", up)
	}
	if ev := next(t, aEvents, EventPeerConnected); ev.Peer != b.id() || ev.Path != "direct" {
		t.Errorf("a's peer_connected = %+v, want b on a direct path", ev)
	}
	fwd := next(t, aEvents, EventTunnelUp)
	if fwd.Kind != "forward" || fwd.Peer != b.id() {
		t.Errorf("a's tunnel_up = %+v, want the forward to b", fwd)
	}

	c := dial(t, addr)
	if _, err := c.Write([]byte("hello")); err != nil {
		t.Fatal(err)
	}
	open := next(t, aEvents, EventStreamOpen)
	if open.StreamID == 0 || open.TunnelID != fwd.TunnelID || open.Peer != b.id() || open.Path != "direct" {
		t.Errorf("stream_open = %+v, want a stream of tunnel %d to b, direct", open, fwd.TunnelID)
	}
	if err := c.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	if got, err := io.ReadAll(c); err != nil || string(got) != "hello" {
		t.Fatalf("echo = %q, %v", got, err)
	}
	closed := next(t, aEvents, EventStreamClose)
	if closed.StreamID != open.StreamID || closed.BytesOut != 5 || closed.BytesIn != 5 || closed.Reason != "eof" || closed.Millis <= 0 {
		t.Errorf("stream_close = %+v, want stream %d with 5 bytes each way, reason eof and a duration", closed, open.StreamID)
	}
	if ev := next(t, bEvents, EventStreamClose); ev.Reason != "eof" || ev.BytesIn != 5 || ev.BytesOut != 5 {
		t.Errorf("b's stream_close = %+v, want 5 bytes each way, eof", ev)
	}

	if _, err := a.CloseListeners(context.Background(), CloseRequest{All: true}); err != nil {
		t.Fatal(err)
	}
	if ev := next(t, aEvents, EventTunnelDown); ev.TunnelID != fwd.TunnelID {
		t.Errorf("tunnel_down = %+v, want tunnel %d", ev, fwd.TunnelID)
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if ev := next(t, bEvents, EventPeerDisconnected); ev.Peer != a.id() {
		t.Errorf("peer_disconnected = %+v, want a", ev)
	}
	// Close ended a's subscription.
	for range aEvents {
	}
}

func TestEventsReportFailuresWithTheirCause(t *testing.T) {
	a, b := newNode(t), newNode(t)
	events, cancel := a.Subscribe()
	defer cancel()
	addr := tunnel(t, a, b, "/x/refused", freePort(t))
	expectReset(t, addr)
	ev := next(t, events, EventStreamClose, EventStreamFailed)
	// b's target refuses and b resets the stream with that cause: a sees
	// it while it is still opening the stream (stream_failed), or once it
	// runs (stream_close). Which comes first is a race; the cause is the
	// same.
	if ev.Reason != "target_dial" || ev.Error == "" {
		t.Errorf("a's event = %+v, want stream_close or stream_failed with Reason target_dial and the error", ev)
	}

	bEvents, cancelB := b.Subscribe()
	defer cancelB()
	expectReset(t, addr)
	if ev := next(t, bEvents, EventStreamFailed); ev.Reason != "target_dial" || ev.Peer != a.id() || ev.Error == "" {
		t.Errorf("b's stream_failed = %+v, want cause target_dial from a with the error", ev)
	}
}
