package cli

import (
	"fmt"
	"strings"

	ucli "github.com/urfave/cli/v2"

	"github.com/p2ptun/p2ptun/api"
	"github.com/p2ptun/p2ptun/spec"
	"github.com/p2ptun/p2ptun/ticket"
)

// forwardForms names forward's two forms, for usage errors.
const forwardForms = "PROTO LISTEN-ADDR PEER-ADDR, or TICKET LISTEN-ADDR"

func forwardCommand() *ucli.Command {
	return &ucli.Command{
		Name:      "forward",
		Usage:     "bind a local port whose connections are tunnelled to a peer's protocol",
		ArgsUsage: "PROTO LISTEN-ADDR PEER-ADDR [PEER-ADDR…] | TICKET LISTEN-ADDR",
		Description: "Binds LISTEN-ADDR (e.g. /ip4/127.0.0.1/tcp/9000; port 0 picks a free port) and\n" +
			"opens a PROTO stream to PEER-ADDR (/p2p/ID, a bare ID, or /ip4/…/tcp/…/p2p/ID) for\n" +
			"each connection. A TICKET from `p2ptun share` gives the peer, its addresses and the\n" +
			"protocol instead, and presents its invite, if any, before binding. Prints the bound\n" +
			"address. Fails if the peer cannot be reached now, unless --lazy. A UDP LISTEN-ADDR\n" +
			"(/ip4/127.0.0.1/udp/5353) makes a UDP tunnel: each client address is a flow, one stream.\n\n" +
			"With several PEER-ADDRs, each connection goes to one of the peers that are up, as\n" +
			"--balance says: failover (the first up, in the order given; the default), rtt (the\n" +
			"lowest round-trip time) or round-robin. A peer that goes down gets no new connections\n" +
			"until it is reachable again; a connection whose stream cannot be opened on one peer is\n" +
			"tried on the next. It fails only if none of the peers can be reached now, unless --lazy.\n\n" +
			"With --socks, LISTEN-ADDR is a SOCKS5 server (CONNECT, no authentication; names are resolved\n" +
			"by the peer) and the peer's `listen PROTO --egress` dials each request its --permit rules allow.",
		Flags: []ucli.Flag{
			&ucli.BoolFlag{Name: "allow-custom-protocol", Usage: "allow a protocol outside the /x/ namespace"},
			&ucli.BoolFlag{Name: "lazy", Usage: "do not connect to the peer now; connect on the first client connection"},
			&ucli.BoolFlag{Name: "allow-limited", Usage: "also use relayed connections that the relay limits in time or data"},
			&ucli.BoolFlag{Name: "save", Usage: "also add it to the config file as a [[forward]], so the daemon starts it at boot"},
			&ucli.StringFlag{Name: "name", Usage: "a `NAME` for the tunnel, shown by ls, events and metrics (and kept in the saved table)"},
			&ucli.StringFlag{Name: "balance", Usage: "with several peers, how each connection picks one: failover, rtt or round-robin (default failover)"},
			&ucli.BoolFlag{Name: "socks", Usage: "serve SOCKS5 on LISTEN-ADDR: each CONNECT goes to the peer's --egress listener, which resolves and dials it"},
			&ucli.BoolFlag{Name: "gateway", Usage: "with --socks: allow a non-loopback LISTEN-ADDR (the SOCKS server has no authentication)"},
			jsonFlag(),
		},
		Action: func(c *ucli.Context) error {
			r, err := forwardArgs(c)
			if err != nil {
				return err
			}
			r.AllowCustomProtocol, r.Lazy, r.AllowLimited = c.Bool("allow-custom-protocol"), c.Bool("lazy"), c.Bool("allow-limited")
			r.Save, r.Name, r.Balance = c.Bool("save"), c.String("name"), c.String("balance")
			r.Socks, r.Gateway = c.Bool("socks"), c.Bool("gateway")
			req := api.ForwardRequestOf(r)
			// Parse locally first, for the same message without a daemon.
			if err := req.Check(); err != nil {
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

// forwardArgs reads forward's arguments in either form: PROTO
// LISTEN-ADDR PEER-ADDR, or TICKET LISTEN-ADDR. A protocol starts with
// "/", a ticket never does.
func forwardArgs(c *ucli.Context) (spec.Request, error) {
	a := c.Args().Slice()
	switch {
	case len(a) > 0 && len(a) != 2 && ticket.IsTicket(a[0]):
		return spec.Request{}, usagef(fmt.Errorf("with a ticket, forward takes TICKET LISTEN-ADDR (got %d argument(s)); see `p2ptun forward --help`", len(a)))
	case len(a) == 3:
		return spec.Request{Protocol: a[0], ListenAddress: a[1], Peer: a[2]}, nil
	case len(a) > 3 && strings.HasPrefix(a[0], "/"):
		return spec.Request{Protocol: a[0], ListenAddress: a[1], Peers: a[2:]}, nil
	case len(a) == 2 && !strings.HasPrefix(a[0], "/"):
		t, err := ticket.Decode(a[0])
		if err != nil {
			if !ticket.IsTicket(a[0]) {
				err = fmt.Errorf("%w; forward takes %s", err, forwardForms)
			}
			return spec.Request{}, usagef(err)
		}
		return spec.TicketForward(t, a[1]), nil
	}
	return spec.Request{}, usagef(fmt.Errorf("forward takes %s (got %d argument(s)); see `p2ptun forward --help`", forwardForms, len(a)))
}
