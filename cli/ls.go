package cli

import (
	"fmt"
	"strings"
	"text/tabwriter"

	ucli "github.com/urfave/cli/v2"

	"github.com/p2ptun/p2ptun/api"
)

func headersFlag() ucli.Flag {
	return &ucli.BoolFlag{Name: "headers", Aliases: []string{"v"}, Usage: "print a header line"}
}

func lsCommand() *ucli.Command {
	return &ucli.Command{
		Name:  "ls",
		Usage: "list listeners and forwards",
		Flags: []ucli.Flag{headersFlag(), jsonFlag()},
		Action: func(c *ucli.Context) error {
			if _, err := args(c, 0, "none"); err != nil {
				return err
			}
			list, err := client(c).Listeners(c.Context)
			if err != nil {
				return err
			}
			if wantJSON(c) {
				return printJSON(c, list)
			}
			rows := make([][]any, 0, len(list.Listeners))
			for _, l := range list.Listeners {
				rows = append(rows, []any{l.Protocol, l.ListenAddress, lsTarget(l), allowed(l), dash(l.Name)})
			}
			// kubo's columns first, then p2ptun's: scripts that cut the
			// first three keep working.
			return printTable(c, []string{"Protocol", "Listen Address", "Target Address", "Allowed Peers", "Name"}, rows)
		},
	}
}

// target is where a listener's connections go: its target address, or a
// forward's peers, each with its state (/p2p/A=up,/p2p/B=down).
func target(l api.Listener) string {
	if len(l.Peers) == 0 {
		return withName(l.TargetAddress, l.Peer, l.PeerName)
	}
	out := make([]string, len(l.Peers))
	for i, p := range l.Peers {
		out[i] = withName("/p2p/"+p.Peer, p.Peer, p.PeerName) + "=" + p.State
	}
	return strings.Join(out, ",")
}

// withName is addr followed by "(NAME)" when addr is /p2p/ID of the peer
// named name ([peers]): the name next to the peer ID, in one column.
func withName(addr, id, name string) string {
	if id == "" || addr != "/p2p/"+id {
		return addr
	}
	return "/p2p/" + withPeerName(id, name)
}

// withPeerName is a peer ID followed by "(NAME)" when it has a name in [peers].
func withPeerName(id, name string) string {
	if name == "" {
		return id
	}
	return id + "(" + name + ")"
}

// allowed describes who may use a listener: "all", its allowlist (each
// peer with its name), or "none" (an invite-only listener nobody has
// joined yet); a forward has none ("-").
func allowed(l api.Listener) string {
	switch {
	case l.Kind != "listen":
		return "-"
	case l.AllowAll:
		return "all"
	case len(l.AllowedPeers) == 0:
		return "none"
	}
	out := make([]string, len(l.AllowedPeers))
	for i, id := range l.AllowedPeers {
		out[i] = withPeerName(id, l.AllowedPeerNames[id])
	}
	return strings.Join(out, ",")
}

// printTable writes rows as aligned columns, with a header line when
// --headers is set.
func printTable(c *ucli.Context, headers []string, rows [][]any) error {
	tw := tabwriter.NewWriter(c.App.Writer, 1, 2, 1, ' ', 0)
	if c.Bool("headers") {
		fmt.Fprintln(tw, strings.Join(headers, "\t"))
	}
	for _, r := range rows {
		for i, v := range r {
			if i > 0 {
				fmt.Fprint(tw, "\t")
			}
			fmt.Fprint(tw, v)
		}
		fmt.Fprintln(tw)
	}
	return tw.Flush()
}

// lsTarget is a listener's target column: its target address, or for a
// SOCKS egress "egress:" and its permit rules, and for a SOCKS forward
// "socks:" and its peer.
func lsTarget(l api.Listener) string {
	switch {
	case l.Egress:
		return "egress:" + strings.Join(l.Permit, ",")
	case l.Socks:
		return "socks:" + l.TargetAddress
	}
	return target(l)
}
