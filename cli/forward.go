package cli

import (
	"fmt"

	ucli "github.com/urfave/cli/v2"

	"github.com/p2ptun/p2ptun/node"
)

func forwardCommand() *ucli.Command {
	return &ucli.Command{
		Name:      "forward",
		Usage:     "bind a local port whose connections are tunnelled to a peer's protocol",
		ArgsUsage: "PROTO LISTEN-ADDR PEER-ADDR",
		Description: "Binds LISTEN-ADDR (e.g. /ip4/127.0.0.1/tcp/9000; port 0 picks a free port) and\n" +
			"opens a PROTO stream to PEER-ADDR (/p2p/ID, a bare ID, or /ip4/…/tcp/…/p2p/ID) for\n" +
			"each connection. Prints the bound address. Fails if the peer cannot be reached\n" +
			"now, unless --lazy.",
		Flags: []ucli.Flag{
			&ucli.BoolFlag{Name: "allow-custom-protocol", Usage: "allow a protocol outside the /x/ namespace"},
			&ucli.BoolFlag{Name: "lazy", Usage: "do not connect to the peer now; connect on the first client connection"},
			&ucli.BoolFlag{Name: "allow-limited", Usage: "also use relayed connections that the relay limits in time or data"},
			&ucli.BoolFlag{Name: "save", Usage: "also add it to the config file as a [[forward]], so the daemon starts it at boot"},
			&ucli.StringFlag{Name: "name", Usage: "label for `ls`, events and metrics (and the saved table)"},
			jsonFlag(),
		},
		Action: func(c *ucli.Context) error {
			a, err := args(c, 3, "PROTO LISTEN-ADDR PEER-ADDR")
			if err != nil {
				return err
			}
			req := node.ForwardRequest{
				Protocol: a[0], ListenAddress: a[1], Peer: a[2],
				AllowCustomProtocol: c.Bool("allow-custom-protocol"), Lazy: c.Bool("lazy"),
				AllowLimited: c.Bool("allow-limited"),
				Save:         c.Bool("save"), Name: c.String("name"),
			}
			if _, err := node.ParseProtocol(req.Protocol, req.AllowCustomProtocol); err != nil {
				return err
			}
			if _, err := node.ParseListenAddr(req.ListenAddress); err != nil {
				return err
			}
			if _, err := node.ParsePeerAddr(req.Peer); err != nil {
				return err
			}
			l, err := client(c).Forward(c.Context, req)
			if err != nil {
				return err
			}
			if wantJSON(c) {
				return printJSON(c, l)
			}
			fmt.Fprintln(c.App.Writer, l.ListenAddress)
			return nil
		},
	}
}
