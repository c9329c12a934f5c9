package harness

import (
	"context"
	"encoding/json"
	"io"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"
)

// Event is what tests read of a line of `p2ptun events --json`.
type Event struct {
	Type     string
	TunnelID uint64
	Name     string
	Kind     string // "listen" or "forward"
	Protocol string
	StreamID uint64
	Peer     string
	PeerName string // Peer's name in [peers], if it has one
	// Reason says why a stream ended or failed, e.g. a refusal's cause
	// ("target_dial", "denied") for stream_failed.
	Reason string
	Error  string
	// Destination is the host:port a SOCKS stream's client asked for.
	Destination string
}

// attached is what the daemon logs once an events subscriber is
// subscribed: from then on no event is missed.
const attached = "events subscriber attached"

// Events follows the daemon's events (`p2ptun events --json`, from the
// binary or in-process as the daemon runs) until the test ends. It
// returns once the daemon has attached the subscriber, so that every
// event after the call arrives on the channel, in order. The channel is
// closed if the subscription ends.
func (d *Daemon) Events(t testing.TB) <-chan Event {
	t.Helper()
	before := strings.Count(d.Logs.String(), attached)
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	var wg sync.WaitGroup
	args := []string{"--home", d.Home, "events", "--json"}
	if d.Run == nil {
		cmd := exec.CommandContext(ctx, Binary(t), args...)
		cmd.Env = Env()
		cmd.Stdout = pw
		cmd.WaitDelay = 5 * time.Second
		if err := cmd.Start(); err != nil {
			cancel()
			t.Fatal(err)
		}
		wg.Go(func() { _ = cmd.Wait(); pw.Close() })
	} else {
		wg.Go(func() { d.Run(ctx, args, pw, io.Discard); pw.Close() })
	}
	events := make(chan Event)
	wg.Go(func() {
		defer close(events)
		dec := json.NewDecoder(pr)
		for {
			var ev Event
			if err := dec.Decode(&ev); err != nil {
				io.Copy(io.Discard, pr) // until the writer is gone
				return
			}
			select {
			case events <- ev:
			case <-ctx.Done():
			}
		}
	})
	t.Cleanup(func() {
		cancel()
		pr.Close()
		wg.Wait()
	})
	d.Until(t, 30*time.Second, "the events subscriber", func() bool {
		return strings.Count(d.Logs.String(), attached) > before
	})
	return events
}

// NextEvent returns the first event from events that match accepts,
// skipping the others, and fails the test if none comes within the bound
// or the subscription ends.
func NextEvent(t testing.TB, events <-chan Event, within time.Duration, what string, match func(Event) bool) Event {
	t.Helper()
	timeout := time.After(within)
	for {
		select {
		case ev, ok := <-events:
			if !ok {
				t.Fatalf("the events subscription ended before %s", what)
			}
			if match(ev) {
				return ev
			}
		case <-timeout:
			t.Fatalf("no event for %s after %v", what, within)
		}
	}
}
