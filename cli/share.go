package cli

import (
	"errors"
	"fmt"

	ucli "github.com/urfave/cli/v2"

	"github.com/p2ptun/p2ptun/api"
	"github.com/p2ptun/p2ptun/config"
	"github.com/p2ptun/p2ptun/node"
	"github.com/p2ptun/p2ptun/spec"
)

func shareCommand() *ucli.Command {
	return &ucli.Command{
		Name:      "share",
		Usage:     "print a ticket with which a peer can forward to one of this node's listeners",
		ArgsUsage: "PROTO",
		Description: "Prints one line, a ticket (p2ptun1…) that names this node, its current addresses\n" +
			"(relay addresses included) and PROTO, which must have a listener here. The other\n" +
			"side runs `p2ptun forward TICKET LISTEN-ADDR`. With --invite, the ticket also carries\n" +
			"a single-use secret: the first peer that presents it joins PROTO's allowlist. An\n" +
			"invite expires after --ttl and does not survive a daemon restart.",
		Flags: []ucli.Flag{
			&ucli.BoolFlag{Name: "invite", Usage: "make a single-use invite: the first peer that presents it is allowed on PROTO"},
			&ucli.DurationFlag{Name: "ttl", Value: node.DefaultInviteTTL, Usage: "how long the invite can be used (with --invite)"},
			jsonFlag(),
		},
		Action: func(c *ucli.Context) error {
			a, err := args(c, 1, "PROTO")
			if err != nil {
				return err
			}
			req := api.ShareRequest{Protocol: a[0], Invite: c.Bool("invite")}
			if _, err := spec.ParseProtocol(req.Protocol, true); err != nil {
				return err
			}
			if c.IsSet("ttl") {
				if !req.Invite {
					return usagef(errors.New("--ttl applies to invites only; add --invite, or drop --ttl"))
				}
				if c.Duration("ttl") <= 0 {
					return usagef(fmt.Errorf("--ttl %s: want a positive duration, like 30m or 24h", c.Duration("ttl")))
				}
			}
			if req.Invite {
				req.TTL = config.D(c.Duration("ttl"))
			}
			sh, err := client(c).Share(c.Context, req)
			if err != nil {
				return err
			}
			if wantJSON(c) {
				return printJSON(c, sh)
			}
			fmt.Fprintln(c.App.Writer, sh.Ticket)
			return nil
		},
	}
}
