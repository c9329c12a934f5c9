package cli

import (
	"errors"
	"fmt"
	"io"
	"strings"

	ucli "github.com/urfave/cli/v2"

	"github.com/p2ptun/p2ptun/api"
)

func eventsCommand() *ucli.Command {
	return &ucli.Command{
		Name:  "events",
		Usage: "follow the daemon's lifecycle events: tunnels, streams, peers",
		Description: "Prints one line per event until interrupted or the daemon stops: tunnel_up,\n" +
			"tunnel_down, tunnel_failed, stream_open, stream_close (bytes, duration, reason),\n" +
			"stream_failed (cause), peer_connected, peer_disconnected, reload,\n" +
			"relay_reservation_held, relay_reservation_lost, hole_punch. With --json each\n" +
			"line is a JSON object (JSON lines), for scripts.",
		Flags: []ucli.Flag{jsonFlag()},
		Action: func(c *ucli.Context) error {
			if _, err := args(c, 0, "none"); err != nil {
				return err
			}
			w := c.App.Writer
			err := client(c).Events(c.Context, nil, func(ev api.Event) error {
				if wantJSON(c) {
					return api.WriteJSON(w, ev, "")
				}
				_, err := io.WriteString(w, formatEvent(ev)+"\n")
				return err
			})
			if errors.Is(err, c.Context.Err()) {
				return nil // interrupted: the normal way to stop following
			}
			return err
		},
	}
}

// formatEvent renders an event as one human-readable line: time, type,
// then the fields that are set, as key=value.
func formatEvent(ev api.Event) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %-17s", ev.Time.Format("15:04:05.000"), ev.Type)
	kv := func(k string, v any, set bool) {
		if set {
			fmt.Fprintf(&b, " %s=%v", k, v)
		}
	}
	kv("tunnel", ev.TunnelID, ev.TunnelID != 0)
	kv("name", ev.Name, ev.Name != "")
	kv("kind", ev.Kind, ev.Kind != "")
	kv("proto", ev.Protocol, ev.Protocol != "")
	kv("listen", ev.ListenAddress, ev.ListenAddress != "")
	kv("stream", ev.StreamID, ev.StreamID != 0)
	kv("origin", ev.OriginAddress, ev.OriginAddress != "")
	kv("target", ev.TargetAddress, ev.TargetAddress != "")
	kv("peer", ev.Peer, ev.Peer != "")
	kv("peer_name", ev.PeerName, ev.PeerName != "")
	kv("path", fmt.Sprintf("%q", ev.Path), ev.Path != "")
	kv("in", ev.BytesIn, ev.Type == api.EventStreamClose)
	kv("out", ev.BytesOut, ev.Type == api.EventStreamClose)
	kv("ms", ev.Millis, ev.Type == api.EventStreamClose || ev.Type == api.EventHolePunch)
	kv("reason", ev.Reason, ev.Reason != "")
	kv("err", fmt.Sprintf("%q", ev.Error), ev.Error != "")
	return b.String()
}
