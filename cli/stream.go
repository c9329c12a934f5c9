package cli

import (
	"fmt"

	ucli "github.com/urfave/cli/v2"

	"github.com/p2ptun/p2ptun/api"
)

func streamCommand() *ucli.Command {
	return &ucli.Command{
		Name:  "stream",
		Usage: "list and close live streams",
		Subcommands: []*ucli.Command{
			{
				Name:  "ls",
				Usage: "list live streams (one per tunnelled TCP connection)",
				Flags: []ucli.Flag{headersFlag(), jsonFlag()},
				Action: func(c *ucli.Context) error {
					if _, err := args(c, 0, "none"); err != nil {
						return err
					}
					list, err := client(c).Streams(c.Context)
					if err != nil {
						return err
					}
					if wantJSON(c) {
						return printJSON(c, list)
					}
					rows := make([][]any, 0, len(list.Streams))
					for _, s := range list.Streams {
						rows = append(rows, []any{s.HandlerID, s.Protocol, withName(s.OriginAddress, s.Peer, s.PeerName), streamTarget(s), s.BytesIn, s.BytesOut, s.Path, rtt(s.RTTMillis)})
					}
					return printTable(c, []string{"ID", "Protocol", "Origin", "Target", "In", "Out", "Path", "RTT"}, rows)
				},
			},
			{
				Name:      "close",
				Usage:     "abort a live stream by ID, or all with -a",
				ArgsUsage: "ID",
				Flags: []ucli.Flag{
					&ucli.BoolFlag{Name: "all", Aliases: []string{"a"}, Usage: "close every live stream"},
					jsonFlag(),
				},
				Action: func(c *ucli.Context) error {
					req := api.StreamCloseRequest{All: c.Bool("all")}
					switch {
					case req.All && c.NArg() == 0:
					case !req.All && c.NArg() == 1:
						req.ID = c.Args().First()
					default:
						return usagef(fmt.Errorf("stream close takes a stream ID or -a; see `p2ptun stream ls`"))
					}
					out, err := client(c).CloseStreams(c.Context, req)
					if err != nil {
						return err
					}
					if wantJSON(c) {
						return printJSON(c, out)
					}
					fmt.Fprintf(c.App.Writer, "closed %d %s\n", out.Closed, plural(out.Closed, "stream"))
					return nil
				},
			},
		},
	}
}

// rtt formats a round-trip time for a table; "-" until one is measured.
func rtt(ms float64) string {
	if ms <= 0 {
		return "-"
	}
	return fmt.Sprintf("%.1fms", ms)
}

// streamTarget is a stream's target column: its target address, and for
// a SOCKS stream the destination its client asked for, in parentheses.
func streamTarget(s api.Stream) string {
	t := withName(s.TargetAddress, s.Peer, s.PeerName)
	if s.Destination != "" {
		return t + "(" + s.Destination + ")"
	}
	return t
}
