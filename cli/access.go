package cli

import (
	"errors"
	"fmt"

	ucli "github.com/urfave/cli/v2"

	"github.com/p2ptun/p2ptun/api"
	"github.com/p2ptun/p2ptun/spec"
)

func accessCommand() *ucli.Command {
	edit := func(verb, usage string) *ucli.Command {
		return &ucli.Command{
			Name:      verb,
			Usage:     usage,
			ArgsUsage: "PEER",
			Flags:     []ucli.Flag{jsonFlag()},
			Action: func(c *ucli.Context) error {
				a, err := args(c, 1, "PEER")
				if err != nil {
					return err
				}
				// A name is the daemon's to resolve.
				if _, err := spec.Aliases(nil).Peer(a[0]); err != nil && !errors.Is(err, spec.ErrUnknownName) {
					return err
				}
				list, err := client(c).EditAccess(c.Context, verb, a[0])
				if err != nil {
					return err
				}
				if wantJSON(c) {
					return printJSON(c, list)
				}
				printAccess(c, list)
				return nil
			},
		}
	}
	return &ucli.Command{
		Name:  "access",
		Usage: "show and edit the node-wide access policy (saved to config.toml)",
		Description: "With an allow list set, only the peers on it can connect to this node at all;\n" +
			"deny always wins. Listeners keep their own --allow lists on top of this.",
		Subcommands: []*ucli.Command{
			{
				Name:  "ls",
				Usage: "print the allow and deny lists",
				Flags: []ucli.Flag{jsonFlag()},
				Action: func(c *ucli.Context) error {
					if _, err := args(c, 0, "none"); err != nil {
						return err
					}
					list, err := client(c).Access(c.Context)
					if err != nil {
						return err
					}
					if wantJSON(c) {
						return printJSON(c, list)
					}
					printAccess(c, list)
					return nil
				},
			},
			edit("allow", "let PEER connect; once the allow list is not empty, only listed peers can"),
			edit("deny", "never let PEER connect, and close its connections now"),
			edit("revoke", "take PEER off both lists"),
		},
	}
}

func printAccess(c *ucli.Context, l api.AccessList) {
	w := c.App.Writer
	if len(l.Allow) == 0 {
		fmt.Fprintln(w, "allow: any peer (no allow list)")
	} else {
		fmt.Fprintln(w, "allow: only these peers")
		for _, p := range l.Allow {
			fmt.Fprintln(w, "  "+p)
		}
	}
	if len(l.Deny) == 0 {
		fmt.Fprintln(w, "deny:  none")
	} else {
		fmt.Fprintln(w, "deny:")
		for _, p := range l.Deny {
			fmt.Fprintln(w, "  "+p)
		}
	}
}
