package cli

import (
	"fmt"
	"strings"

	ucli "github.com/urfave/cli/v2"

	"github.com/p2ptun/p2ptun/api"
)

func listenCommand() *ucli.Command {
	return &ucli.Command{
		Name:      "listen",
		Usage:     "expose a local TCP service to allowed peers under a protocol",
		ArgsUsage: "PROTO TARGET | PROTO --egress --permit HOST:PORTS…",
		Description: "Registers PROTO (e.g. /x/web) on the daemon; each stream an allowed peer opens\n" +
			"is bridged to a new connection to TARGET (e.g. /ip4/127.0.0.1/tcp/8080 or 127.0.0.1:8080).\n" +
			"Only peers named with --allow may connect, unless --allow-all is given; with\n" +
			"--invite-only, none may until they redeem an invite from `p2ptun share PROTO --invite`.\n" +
			"A UDP TARGET (/ip4/127.0.0.1/udp/53) makes a UDP tunnel: each stream is one flow of datagrams.\n" +

			"With --egress there is no TARGET: the listener is the far side of `forward --socks`,\n" +
			"and dials each requested destination that a --permit rule matches (nothing else).",
		Flags: []ucli.Flag{
			&ucli.StringSliceFlag{Name: "allow", Usage: "peer ID allowed to connect (repeatable)"},
			&ucli.BoolFlag{Name: "allow-all", Usage: "accept streams from any peer that can reach this node"},
			&ucli.BoolFlag{Name: "invite-only", Usage: "allow no peer yet: peers join by redeeming invites (made with: p2ptun share PROTO --invite)"},
			&ucli.BoolFlag{Name: "report-peer-id", Aliases: []string{"r"}, Usage: "send the caller's peer ID and a newline to the target first (as kubo does)"},
			&ucli.BoolFlag{Name: "allow-custom-protocol", Usage: "allow a protocol outside the /x/ namespace"},
			&ucli.StringFlag{Name: "proxy-protocol", Usage: "send the target a PROXY protocol header first: v1 (addresses), or v2 (addresses and the peer ID in TLV 0xE0)"},
			&ucli.BoolFlag{Name: "save", Usage: "also add it to the config file as a [[listen]], so the daemon starts it at boot"},
			&ucli.StringFlag{Name: "name", Usage: "a `NAME` for the tunnel, shown by ls, events and metrics (and kept in the saved table)"},
			&ucli.BoolFlag{Name: "egress", Usage: "be a SOCKS egress (no TARGET): dial what each request of a forward --socks names, if --permit allows it"},
			&ucli.StringSliceFlag{Name: "permit", Usage: "with --egress: a destination that may be dialled, HOST:PORTS (10.0.0.0/8:22, db.internal:5432, [fd00::/8]:443, localhost:8000-8099, *.internal:*); repeatable"},
			jsonFlag(),
		},
		Action: func(c *ucli.Context) error {
			a, err := listenArgs(c)
			if err != nil {
				return err
			}
			req := api.ListenRequest{
				Protocol: a[0], Target: a[1], Allow: c.StringSlice("allow"),
				Egress: c.Bool("egress"), Permit: c.StringSlice("permit"),
				AllowAll: c.Bool("allow-all"), InviteOnly: c.Bool("invite-only"), ReportPeerID: c.Bool("report-peer-id"),
				AllowCustomProtocol: c.Bool("allow-custom-protocol"),
				Save:                c.Bool("save"), Name: c.String("name"),
				ProxyProtocol: c.String("proxy-protocol"),
			}
			// Parse locally first, for the same message without a daemon.
			if err := req.Check(); err != nil {
				return err
			}
			l, err := client(c).Listen(c.Context, req)
			if err != nil {
				return err
			}
			if wantJSON(c) {
				return printJSON(c, l)
			}
			fmt.Fprint(c.App.Writer, listenSummary(l))
			return nil
		},
	}
}

// listenSummary is what listen prints: the listener (protocol, peer,
// target, who may connect) and the command that reaches it from a peer
// it allows, as forward prints where its listener is.
func listenSummary(l api.Listener) string {
	to, local, socks := l.TargetAddress, "127.0.0.1:PORT", ""
	switch {
	case l.Egress:
		to, local, socks = "SOCKS egress to "+strings.Join(l.Permit, ", "), "127.0.0.1:1080", " --socks"
	case strings.Contains(l.TargetAddress, "/udp/"):
		local = "/ip4/127.0.0.1/udp/PORT"
	}
	who := "peers: " + strings.Join(l.AllowedPeers, ", ")
	switch {
	case l.AllowAll:
		who = "any peer"
	case l.InviteOnly && len(l.AllowedPeers) == 0:
		who = "peers with an invite (p2ptun share " + l.Protocol + " --invite)"
	}
	return fmt.Sprintf("listening: %s → %s, for %s\nreach it: p2ptun forward %s %s %s%s\n",
		l.Protocol, to, who, l.Protocol, local, l.ListenAddress, socks)
}

// listenArgs reads PROTO TARGET, or PROTO alone with --egress; the
// target is then "".
func listenArgs(c *ucli.Context) ([]string, error) {
	if c.Bool("egress") && c.NArg() == 1 {
		return []string{c.Args().First(), ""}, nil
	}
	return args(c, 2, "PROTO TARGET")
}
