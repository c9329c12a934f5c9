package cli

import (
	"fmt"
	"text/tabwriter"

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
					tw := tabwriter.NewWriter(c.App.Writer, 1, 2, 1, ' ', 0)
					if c.Bool("headers") {
						fmt.Fprintln(tw, "ID\tProtocol\tOrigin\tTarget\tIn\tOut")
					}
					for _, s := range list.Streams {
						fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%d\n", s.HandlerID, s.Protocol, s.OriginAddress, s.TargetAddress, s.BytesIn, s.BytesOut)
					}
					return tw.Flush()
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
