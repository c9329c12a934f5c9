package cli

import (
	"fmt"

	ucli "github.com/urfave/cli/v2"

	"github.com/p2ptun/p2ptun/api"
)

func closeCommand() *ucli.Command {
	return &ucli.Command{
		Name:        "close",
		Usage:       "close listeners and forwards, and their streams",
		Description: "Give exactly one of -a, -p, -l, -t. Fails (exit 7) when nothing matches.",
		Flags: []ucli.Flag{
			&ucli.BoolFlag{Name: "all", Aliases: []string{"a"}, Usage: "close every listener and forward"},
			&ucli.StringFlag{Name: "protocol", Aliases: []string{"p"}, Usage: "close those with this protocol"},
			&ucli.StringFlag{Name: "listen-address", Aliases: []string{"l"}, Usage: "close those with this listen address"},
			&ucli.StringFlag{Name: "target-address", Aliases: []string{"t"}, Usage: "close those with this target address"},
			jsonFlag(),
		},
		Action: func(c *ucli.Context) error {
			if _, err := args(c, 0, "none"); err != nil {
				return err
			}
			req := api.CloseRequest{
				All: c.Bool("all"), Protocol: c.String("protocol"),
				ListenAddress: c.String("listen-address"), TargetAddress: c.String("target-address"),
			}
			n := 0
			for _, set := range []bool{req.All, req.Protocol != "", req.ListenAddress != "", req.TargetAddress != ""} {
				if set {
					n++
				}
			}
			if n != 1 {
				return usagef(fmt.Errorf("close needs exactly one of -a, -p PROTO, -l LISTEN-ADDR, -t TARGET"))
			}
			out, err := client(c).CloseListeners(c.Context, req)
			if err != nil {
				return err
			}
			if wantJSON(c) {
				return printJSON(c, out)
			}
			// Listeners and forwards alike: both are tunnels.
			fmt.Fprintf(c.App.Writer, "closed %d %s\n", out.Closed, plural(out.Closed, "tunnel"))
			return nil
		},
	}
}

func plural(n int, word string) string {
	if n == 1 {
		return word
	}
	return word + "s"
}
