package cli

import (
	"path/filepath"

	"github.com/pelletier/go-toml/v2"
	ucli "github.com/urfave/cli/v2"

	"github.com/p2ptun/p2ptun/config"
)

func configCommand() *ucli.Command {
	return &ucli.Command{
		Name:  "config",
		Usage: "inspect the configuration",
		Subcommands: []*ucli.Command{
			{
				Name:  "show",
				Usage: "print the effective config: HOME/config.toml with every default filled in",
				Flags: []ucli.Flag{jsonFlag()},
				Action: func(c *ucli.Context) error {
					if _, err := args(c, 0, "none"); err != nil {
						return err
					}
					cfg, err := config.Load(filepath.Join(homeDir(c), config.ConfigFile))
					if err != nil {
						return err
					}
					if wantJSON(c) {
						return printJSON(c, cfg)
					}
					enc := toml.NewEncoder(c.App.Writer).SetIndentTables(false)
					return enc.Encode(cfg)
				},
			},
		},
	}
}
