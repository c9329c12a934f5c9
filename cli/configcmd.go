package cli

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"

	"github.com/pelletier/go-toml/v2"
	ucli "github.com/urfave/cli/v2"

	"github.com/p2ptun/p2ptun/config"
	"github.com/p2ptun/p2ptun/config/homedir"
)

// configFlags are the daemon's flags that set config keys: the ones
// config show merges, as the daemon does.
func configFlags() []ucli.Flag {
	keys := []string{"listen-addr", "swarm-key", "relay", "reachability", "no-mdns", "dht", "bootstrap", "metrics"}
	return slices.DeleteFunc(daemonFlags(), func(f ucli.Flag) bool { return !slices.Contains(keys, f.Names()[0]) })
}

func configCommand() *ucli.Command {
	return &ucli.Command{
		Name:  "config",
		Usage: "inspect the configuration",
		Subcommands: []*ucli.Command{
			{
				Name:      "check",
				Usage:     "validate a config file (default HOME/config.toml); errors name the line",
				ArgsUsage: "[FILE]",
				Action: func(c *ucli.Context) error {
					if c.NArg() > 1 {
						return usagef(fmt.Errorf("expected at most one argument, FILE; see `p2ptun config check --help`"))
					}
					path := c.Args().First()
					if path == "" {
						path = filepath.Join(homeDir(c), config.ConfigFile)
						if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
							fmt.Fprintf(c.App.Writer, "%s: no such file; the defaults apply\n", path)
							return nil
						}
					}
					cfg, err := config.LoadFile(path) // its tunnels too, with spec
					if err != nil {
						return err
					}
					fmt.Fprintf(c.App.Writer, "%s: ok (%d listen and %d forward tunnels)\n", path, len(cfg.Listen), len(cfg.Forward))
					return nil
				},
			},
			{
				Name:  "show",
				Usage: "print the effective config: HOME/config.toml with every default filled in, and the daemon flags given here merged over it",
				Description: "Prints what `p2ptun daemon` would run with: HOME/config.toml, every default\n" +
					"filled in, and the daemon's config flags given to this command (--listen-addr,\n" +
					"--metrics, --relay, --dht, ...), or their P2PTUN_* variables, merged over it.",
				Flags: append(configFlags(), jsonFlag()),
				Action: func(c *ucli.Context) error {
					if _, err := args(c, 0, "none"); err != nil {
						return err
					}
					cfg, err := config.Load(filepath.Join(homeDir(c), config.ConfigFile))
					if err != nil {
						return err
					}
					if err := mergeFlags(c, &cfg, false); err != nil {
						return err
					}
					if wantJSON(c) {
						return printJSON(c, cfg)
					}
					var b bytes.Buffer
					if err := toml.NewEncoder(&b).SetIndentTables(false).Encode(cfg); err != nil {
						return err
					}
					_, err = c.App.Writer.Write(homedir.DoubleQuoted(b.Bytes()))
					return err
				},
			},
		},
	}
}
