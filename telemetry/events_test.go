package telemetry

import "testing"

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
