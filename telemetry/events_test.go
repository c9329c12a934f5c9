package telemetry

import (
	"errors"
	"strings"
	"testing"
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
