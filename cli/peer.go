package cli

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	ucli "github.com/urfave/cli/v2"

	"github.com/p2ptun/p2ptun/api"
	"github.com/p2ptun/p2ptun/config"
	"github.com/p2ptun/p2ptun/config/homedir"
	"github.com/p2ptun/p2ptun/spec"
	"github.com/p2ptun/p2ptun/ticket"
)

func peerCommand() *ucli.Command {
	return &ucli.Command{
		Name:  "peer",
		Usage: "name peers, like ssh's Host: a name works wherever a PEER does (saved to config.toml)",
		Description: "Names live in config.toml's [peers] table. Through a running daemon, which\n" +
			"resolves a new name at once; without one, in the file. A tunnel keeps the peer\n" +
			"its name resolved to when it opened: change a name, then `p2ptun reload` (config\n" +
			"tunnels) or open the tunnel again.",
		Subcommands: []*ucli.Command{
			{
				Name:      "add",
				Usage:     "call a peer NAME: PEER-ADDR is /p2p/ID, a bare ID or a multiaddr ending in /p2p/ID; a TICKET names its peer",
				ArgsUsage: "NAME (PEER-ADDR | TICKET)",
				Flags:     []ucli.Flag{jsonFlag()},
				Action: func(c *ucli.Context) error {
					a, err := args(c, 2, "NAME PEER-ADDR")
					if err != nil {
						return err
					}
					if err := spec.CheckName(a[0]); err != nil {
						return err
					}
					addr, err := namedAddr(a[1])
					if err != nil {
						return err
					}
					return setPeerName(c, a[0], addr)
				},
			},
			{
				Name:      "rm",
				Usage:     "forget the name NAME (tunnels opened with it keep their peer)",
				ArgsUsage: "NAME",
				Flags:     []ucli.Flag{jsonFlag()},
				Action: func(c *ucli.Context) error {
					a, err := args(c, 1, "NAME")
					if err != nil {
						return err
					}
					return setPeerName(c, a[0], "")
				},
			},
			{
				Name:  "ls",
				Usage: "list the names and the peers they name",
				Flags: []ucli.Flag{jsonFlag()},
				Action: func(c *ucli.Context) error {
					if _, err := args(c, 0, "none"); err != nil {
						return err
					}
					list, err := client(c).PeerNames(c.Context)
					if errors.Is(err, api.ErrDaemonNotRunning) {
						list, err = filePeerNames(c)
					}
					if err != nil {
						return err
					}
					return printPeerNames(c, list)
				},
			},
		},
	}
}

// namedAddr is the address a name is saved with: PEER-ADDR as written, or
// a ticket's peer at the first address it lists.
func namedAddr(s string) (string, error) {
	if !ticket.IsTicket(s) {
		_, err := spec.ParsePeerAddr(s)
		return s, err
	}
	t, err := ticket.Decode(s)
	if err != nil {
		return "", usagef(err)
	}
	if len(t.Addrs) == 0 {
		return "/p2p/" + t.Peer.String(), nil
	}
	return t.Addrs[0].String() + "/p2p/" + t.Peer.String(), nil
}

// setPeerName saves NAME = addr (or removes NAME) through the daemon, or
// in the config file when no daemon runs.
func setPeerName(c *ucli.Context, name, addr string) error {
	list, err := client(c).SetPeerName(c.Context, api.PeerNameRequest{Name: name, Addr: addr})
	if errors.Is(err, api.ErrDaemonNotRunning) {
		// Like ~/.ssh, the home is made on first use.
		if err = os.MkdirAll(homeDir(c), 0o700); err == nil {
			err = homedir.Check(homeDir(c), apiGroup(homeDir(c)))
		}
		if err == nil {
			err = homedir.SetPeerName(filepath.Join(homeDir(c), config.ConfigFile), name, addr)
		}
		if err == nil {
			list, err = filePeerNames(c)
		}
	}
	if err != nil {
		return err
	}
	return printPeerNames(c, list)
}

// filePeerNames are the names in the config file.
func filePeerNames(c *ucli.Context) (api.PeerNameList, error) {
	cfg, err := config.Load(filepath.Join(homeDir(c), config.ConfigFile))
	if err != nil {
		return api.PeerNameList{}, err
	}
	return api.PeerNamesFrom(cfg.Aliases()), nil
}

func printPeerNames(c *ucli.Context, l api.PeerNameList) error {
	if wantJSON(c) {
		return printJSON(c, l)
	}
	for _, p := range l.Peers {
		fmt.Fprintf(c.App.Writer, "%s\t%s\n", p.Name, p.Addr)
	}
	return nil
}

// apiGroup is the [api] group of the config in home, the one group that
// may search it (-1 for none, or when the config cannot be read: the
// strict check).
func apiGroup(home string) int {
	cfg, err := config.Load(filepath.Join(home, config.ConfigFile))
	if err != nil {
		return -1
	}
	gid, err := cfg.API.GID()
	if err != nil {
		return -1
	}
	return gid
}
