package cli

import (
	"fmt"

	"github.com/libp2p/go-libp2p/core/peer"
	ucli "github.com/urfave/cli/v2"

	"github.com/p2ptun/p2ptun/config/homedir"
)

func initCommand() *ucli.Command {
	return &ucli.Command{
		Name:  "init",
		Usage: "create the home directory, an Ed25519 identity and a default config.toml",
		Description: "Creates HOME (mode 0700), HOME/identity.key (0600) and a commented HOME/config.toml.\n" +
			"Refuses to overwrite an existing identity.",
		Flags: []ucli.Flag{jsonFlag()},
		Action: func(c *ucli.Context) error {
			if _, err := args(c, 0, "none"); err != nil {
				return err
			}
			home := homeDir(c)
			sk, err := homedir.Init(home)
			if err != nil {
				return err
			}
			id, err := peer.IDFromPrivateKey(sk)
			if err != nil {
				return err
			}
			if wantJSON(c) {
				return printJSON(c, struct{ ID, Home string }{id.String(), home})
			}
			fmt.Fprintf(c.App.Writer, "initialized %s\npeer ID %s\n", home, id)
			return nil
		},
	}
}
