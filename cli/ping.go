package cli

import (
	"errors"
	"fmt"

	ucli "github.com/urfave/cli/v2"

	"github.com/p2ptun/p2ptun/api"
	"github.com/p2ptun/p2ptun/spec"
)

func pingCommand() *ucli.Command {
	return &ucli.Command{
		Name:      "ping",
		Usage:     "measure round trips to a peer and show the path they take",
		ArgsUsage: "PEER-ADDR",
		Flags: []ucli.Flag{
			&ucli.IntFlag{Name: "count", Aliases: []string{"n"}, Value: 3, Usage: "how many round trips (1-1000)"},
			jsonFlag(),
		},
		Action: func(c *ucli.Context) error {
			a, err := args(c, 1, "PEER-ADDR")
			if err != nil {
				return err
			}
			// A name is the daemon's to resolve.
			if _, err := spec.Aliases(nil).PeerAddr(a[0]); err != nil && !errors.Is(err, spec.ErrUnknownName) {
				return err
			}
			out, err := client(c).Ping(c.Context, api.PingRequest{Peer: a[0], Count: c.Int("count")})
			if err != nil {
				return err
			}
			if wantJSON(c) {
				return printJSON(c, out)
			}
			for i, r := range out.Results {
				fmt.Fprintf(c.App.Writer, "%d: rtt=%.3fms path=%s\n", i+1, r.RTTMillis, r.Path)
			}
			return nil
		},
	}
}
