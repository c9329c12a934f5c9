package cli

import (
	"errors"
	"fmt"
	"path/filepath"

	"github.com/libp2p/go-libp2p/core/peer"
	ucli "github.com/urfave/cli/v2"

	"github.com/p2ptun/p2ptun/api"
	"github.com/p2ptun/p2ptun/config"
	"github.com/p2ptun/p2ptun/config/homedir"
)

func idCommand() *ucli.Command {
	return &ucli.Command{
		Name:  "id",
		Usage: "print the peer ID and listen addresses",
		Description: "Asks the running daemon; with none running, reads the identity from HOME and\n" +
			"prints no addresses. Text output: the peer ID, then one address per line.",
		Flags: []ucli.Flag{jsonFlag()},
		Action: func(c *ucli.Context) error {
			if _, err := args(c, 0, "none"); err != nil {
				return err
			}
			id, err := client(c).ID(c.Context)
			if errors.Is(err, api.ErrDaemonNotRunning) {
				id, err = offlineID(homeDir(c))
			}
			if err != nil {
				return err
			}
			if id.Addresses == nil {
				id.Addresses = []string{}
			}
			if wantJSON(c) {
				return printJSON(c, id)
			}
			fmt.Fprintln(c.App.Writer, id.ID)
			for _, a := range id.Addresses {
				fmt.Fprintln(c.App.Writer, a)
			}
			return nil
		},
	}
}

func offlineID(home string) (api.Identity, error) {
	cfg, err := config.Load(filepath.Join(home, config.ConfigFile))
	if err != nil {
		return api.Identity{}, err
	}
	sk, err := homedir.LoadKey(cfg.KeyPath(home))
	if err != nil {
		return api.Identity{}, err
	}
	pid, err := peer.IDFromPrivateKey(sk)
	if err != nil {
		return api.Identity{}, err
	}
	return api.Identity{ID: pid.String(), AgentVersion: UserAgent()}, nil
}
