package telemetry

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestSlowSubscriberIsCutOffNotBlocking(t *testing.T) {
	var b Bus
	events, cancel := b.Subscribe()
	defer cancel()
	for range Buffer + 10 {
		b.Emit(Event{Type: EventReload}) // must never block
	}
	count := 0
	var last Event
	for ev := range events {
		count++
		last = ev
	}
	if last.Type != EventLost || count != Buffer+1 {
		t.Fatalf("got %d events ending in %q, want %d ending in %s", count, last.Type, Buffer+1, EventLost)
	}
}

func TestRelayReservationEvents(t *testing.T) {
	const relay = "12D3KooWRelay"
	if ev := RelayReservation(relay, nil); ev.Type != EventRelayHeld || ev.Peer != relay || ev.Error != "" {
		t.Errorf("held = %+v, want %s naming the relay, no error", ev, EventRelayHeld)
	}
	lost := RelayReservation(relay, errors.New("failed to dial:\n  * connection refused"))
	if lost.Type != EventRelayLost || lost.Peer != relay || lost.Error == "" || strings.Contains(lost.Error, "\n") {
		t.Errorf("lost = %+v, want %s naming the relay, with the error on one line", lost, EventRelayLost)
	}
}

func TestHolePunchEvents(t *testing.T) {
	const peer = "12D3KooWPeer"
	if ev := HolePunch(peer, 1500*time.Microsecond, nil); ev.Type != EventHolePunch || ev.Peer != peer || ev.Reason != "direct" || ev.Millis != 1.5 || ev.Error != "" {
		t.Errorf("success = %+v, want %s naming the peer, Reason direct, 1.5 ms", ev, EventHolePunch)
	}
	if ev := HolePunch(peer, time.Second, errors.New("all dials failed\n  * timeout")); ev.Reason != "failed" || ev.Error == "" || strings.Contains(ev.Error, "\n") {
		t.Errorf("failure = %+v, want Reason failed with the error on one line", ev)
	}
}

func TestReloadEventSaysWhatChanged(t *testing.T) {
	ev := Reload(1, 2, 3, 0, 1, []string{"network.listen_addrs", "limits"})
	want := "added 1, removed 2, unchanged 3, restarted 0, failed 1; restart to apply network.listen_addrs, limits"
	if ev.Type != EventReload || ev.Reason != want {
		t.Fatalf("Reload = %q %q, want %q %q", ev.Type, ev.Reason, EventReload, want)
	}
	if ev := Reload(0, 0, 1, 0, 0, nil); ev.Reason != "added 0, removed 0, unchanged 1, restarted 0, failed 0" {
		t.Fatalf("Reload with nothing to restart says %q", ev.Reason)
	}
}
