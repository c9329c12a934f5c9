package cli

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	ucli "github.com/urfave/cli/v2"

	"github.com/p2ptun/p2ptun/api"
)

func statusCommand() *ucli.Command {
	return &ucli.Command{
		Name:  "status",
		Usage: "show every tunnel (config file and runtime) with its state, and the peers",
		Description: "One line per tunnel: its name, kind, protocol, state, live streams and the bytes\n" +
			"they moved, and its addresses. Config-file tunnels show even when they are not\n" +
			"up: starting, retrying (with the last error and when the next attempt is due),\n" +
			"failed (for good: fix the config and reload) or closed (with `p2ptun close`; back\n" +
			"on reload). Then the peers: connected ones and those a tunnel names, with the path\n" +
			"(direct or relayed) and the round-trip time.",
		Flags: []ucli.Flag{jsonFlag()},
		Action: func(c *ucli.Context) error {
			if _, err := args(c, 0, "none"); err != nil {
				return err
			}
			ov, err := client(c).Overview(c.Context)
			if err != nil {
				return err
			}
			if wantJSON(c) {
				return printJSON(c, ov)
			}
			_, err = io.WriteString(c.App.Writer, renderStatus(ov, time.Now()))
			return err
		},
	}
}

// renderStatus is the text of `p2ptun status` at now: the tunnels, then
// a line for each one that is not up saying why and what next, then the
// peers.
func renderStatus(ov api.Overview, now time.Time) string {
	var b strings.Builder
	if !ov.Ready {
		b.WriteString("the daemon is still starting its config tunnels\n")
	}
	if len(ov.Tunnels) == 0 {
		b.WriteString("no tunnels: see `p2ptun listen`, `p2ptun forward`, or [[listen]]/[[forward]] in the config file\n")
	} else {
		tw := tabwriter.NewWriter(&b, 1, 2, 2, ' ', 0)
		fmt.Fprintln(tw, "TUNNEL\tKIND\tPROTOCOL\tSTATE\tSTREAMS\tIN\tOUT\tLISTEN\tTARGET\tPEERS")
		for _, t := range ov.Tunnels {
			peers := make([]string, len(t.Peers))
			for i, p := range t.Peers {
				peers[i] = withPeerName(p.Peer, p.PeerName)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\t%s\t%s\t%s\t%s\n", t.Name, t.Kind, t.Protocol, t.State,
				t.Streams, humanBytes(float64(t.BytesIn)), humanBytes(float64(t.BytesOut)), dash(t.ListenAddress), dash(t.TargetAddress),
				dash(strings.Join(peers, ",")))
		}
		tw.Flush()
		sep := "\n"
		for _, t := range ov.Tunnels {
			if why := tunnelWhy(t, now); why != "" {
				fmt.Fprintf(&b, "%s%s: %s\n", sep, t.Name, why)
				sep = ""
			}
		}
	}
	b.WriteString("\n")
	if len(ov.Peers) == 0 {
		b.WriteString("no peers connected\n")
		return b.String()
	}
	tw := tabwriter.NewWriter(&b, 1, 2, 2, ' ', 0)
	fmt.Fprintln(tw, "PEER\tPATH\tRTT\tTUNNEL")
	for _, p := range ov.Peers {
		rtt := "-"
		if p.RTTMillis > 0 {
			rtt = fmt.Sprintf("%.1fms", p.RTTMillis)
		}
		tunnel := "-"
		if p.Tunnel {
			tunnel = "yes"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", withPeerName(p.Peer, p.PeerName), p.Path, rtt, tunnel)
	}
	tw.Flush()
	return b.String()
}

// tunnelWhy says why a config tunnel is not up and what happens next; ""
// for one that is up.
func tunnelWhy(t api.TunnelOverview, now time.Time) string {
	where := ""
	if t.Line > 0 {
		where = fmt.Sprintf("(config line %d) ", t.Line)
	}
	switch t.State {
	case api.OverviewRetrying:
		in := max(t.NextRetry.Sub(now), 0).Round(time.Second)
		return fmt.Sprintf("%s%s; %s failed, next in %s", where, t.Error, attempts(t.Attempts), in)
	case api.OverviewFailed:
		return fmt.Sprintf("%s%s; not retried: fix the config, then `p2ptun reload`", where, t.Error)
	case api.OverviewStarting:
		return where + "first attempt under way"
	case api.OverviewClosed:
		return where + "closed with `p2ptun close`; `p2ptun reload` starts it again"
	}
	return ""
}

func attempts(n int) string {
	if n == 1 {
		return "1 attempt"
	}
	return fmt.Sprintf("%d attempts", n)
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
