package cli

import (
	"fmt"
	"slices"
	"strings"

	ucli "github.com/urfave/cli/v2"

	"github.com/p2ptun/p2ptun/api"
	"github.com/p2ptun/p2ptun/node"
	"github.com/p2ptun/p2ptun/ticket"
)

// forwardForms names forward's two forms, for usage errors.
const forwardForms = "PROTO LISTEN-ADDR PEER-ADDR, or TICKET LISTEN-ADDR"

func forwardCommand() *ucli.Command {
	return &ucli.Command{
		Name:      "forward",
		Usage:     "bind a local port whose connections are tunnelled to a peer's protocol",
		ArgsUsage: "PROTO LISTEN-ADDR PEER-ADDR | TICKET LISTEN-ADDR",
		Description: "Binds LISTEN-ADDR (e.g. /ip4/127.0.0.1/tcp/9000; port 0 picks a free port) and\n" +
			"opens a PROTO stream to PEER-ADDR (/p2p/ID, a bare ID, or /ip4/…/tcp/…/p2p/ID) for\n" +
			"each connection. A TICKET from `p2ptun share` gives the peer, its addresses and the\n" +
			"protocol instead, and presents its invite, if any, before binding. Prints the bound\n" +
			"address. Fails if the peer cannot be reached now, unless --lazy.",
		Flags: []ucli.Flag{
			&ucli.BoolFlag{Name: "allow-custom-protocol", Usage: "allow a protocol outside the /x/ namespace"},
			&ucli.BoolFlag{Name: "lazy", Usage: "do not connect to the peer now; connect on the first client connection"},
			&ucli.BoolFlag{Name: "allow-limited", Usage: "also use relayed connections that the relay limits in time or data"},
			&ucli.BoolFlag{Name: "save", Usage: "also add it to the config file as a [[forward]], so the daemon starts it at boot"},
			&ucli.StringFlag{Name: "name", Usage: "label for `ls`, events and metrics (and the saved table)"},
			jsonFlag(),
		},
		Action: func(c *ucli.Context) error {
			req, err := forwardRequest(c)
			if err != nil {
				return err
			}
			req.AllowCustomProtocol, req.Lazy, req.AllowLimited = c.Bool("allow-custom-protocol"), c.Bool("lazy"), c.Bool("allow-limited")
			req.Save, req.Name = c.Bool("save"), c.String("name")
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

// forwardRequest reads forward's arguments in either form: PROTO
// LISTEN-ADDR PEER-ADDR, or TICKET LISTEN-ADDR. A protocol starts with
// "/", a ticket never does.
func forwardRequest(c *ucli.Context) (api.ForwardRequest, error) {
	a := c.Args().Slice()
	switch {
	case len(a) > 0 && len(a) != 2 && ticket.IsTicket(a[0]):
		return api.ForwardRequest{}, usagef(fmt.Errorf("with a ticket, forward takes TICKET LISTEN-ADDR (got %d argument(s)); see `p2ptun forward --help`", len(a)))
	case len(a) == 3:
		return api.ForwardRequest{Protocol: a[0], ListenAddress: a[1], Peer: a[2]}, nil
	case len(a) == 2 && !strings.HasPrefix(a[0], "/"):
		t, err := ticket.Decode(a[0])
		if err != nil {
			if !ticket.IsTicket(a[0]) {
				err = fmt.Errorf("%w; forward takes %s", err, forwardForms)
			}
			return api.ForwardRequest{}, usagef(err)
		}
		return ticketForward(t, a[1]), nil
	}
	return api.ForwardRequest{}, usagef(fmt.Errorf("forward takes %s (got %d argument(s)); see `p2ptun forward --help`", forwardForms, len(a)))
}

// ticketForward returns the request that binds listenAddr and forwards it
// to the peer and protocol t names, dialing the ticket's addresses and
// presenting its invite, if any.
func ticketForward(t ticket.Ticket, listenAddr string) api.ForwardRequest {
	addrs := make([]string, len(t.Addrs))
	for i, a := range t.Addrs {
		addrs[i] = a.String()
	}
	return api.ForwardRequest{
		Protocol: t.Protocol, ListenAddress: listenAddr, Peer: t.Peer.String(),
		Addrs: addrs, Invite: slices.Clone(t.Secret),
	}
}
