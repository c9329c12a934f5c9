package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	ucli "github.com/urfave/cli/v2"

	"github.com/p2ptun/p2ptun/api"
	"github.com/p2ptun/p2ptun/config"
)

// Run runs the p2ptun command line with args (without the program name),
// writing to stdout and stderr, and returns the process exit code. ctx
// ends the daemon when cancelled (main cancels it on SIGINT/SIGTERM).
// Commands that read standard input (pipe) read os.Stdin.
func Run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return RunStdin(ctx, args, os.Stdin, stdout, stderr)
}

// RunStdin is Run with standard input read from stdin.
func RunStdin(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	app := newApp(stdout, stderr)
	app.Reader = stdin
	if n := len(args); n == 0 || args[n-1] != completionFlag {
		args = permute(app, args) // completion needs its flag last
	}
	err := app.RunContext(ctx, append([]string{"p2ptun"}, args...))
	if err != nil {
		msg := strings.ReplaceAll(err.Error(), "\n", " ")
		fmt.Fprintf(stderr, "p2ptun: %s\n", msg)
	}
	return exitCode(err)
}

func newApp(stdout, stderr io.Writer) *ucli.App {
	app := &ucli.App{
		Name:      "p2ptun",
		Usage:     "forward TCP connections over libp2p streams, peer to peer",
		Version:   version(),
		Writer:    stdout,
		ErrWriter: stderr,
		Flags: []ucli.Flag{
			&ucli.StringFlag{Name: "home", Usage: "p2ptun's home directory (identity, config, API socket)", EnvVars: []string{"P2PTUN_HOME"}, Value: defaultHome()},
			&ucli.StringFlag{Name: "api", Usage: "path of the daemon's API socket (default: HOME/api.sock)", EnvVars: []string{"P2PTUN_API"}},
			jsonFlag(),
			&ucli.DurationFlag{Name: "timeout", Value: api.DefaultTimeout, EnvVars: []string{"P2PTUN_TIMEOUT"},
				Usage: "give up (exit 9) on a daemon that has not answered a request within this long; 0: wait forever. Bounds each request, not what events, top or pipe then stream"},
			&ucli.BoolFlag{Name: "version", Aliases: []string{"v"}, Usage: "print p2ptun's version, as the version command does"},
		},
		Commands: []*ucli.Command{
			initCommand(), daemonCommand(), idCommand(), listenCommand(), forwardCommand(), shareCommand(), pipeCommand(),
			lsCommand(), closeCommand(), streamCommand(), accessCommand(), peerCommand(), configCommand(), pingCommand(), relayCommand(), eventsCommand(), topCommand(), statusCommand(),
			reloadCommand(), waitCommand(), versionCommand(), completionCommand(), manCommand(),
		},
		HideVersion:    true,
		ExitErrHandler: func(*ucli.Context, error) {}, // Run maps errors to exit codes
		OnUsageError: func(_ *ucli.Context, err error, _ bool) error {
			return usagef(err)
		},
		CommandNotFound: func(c *ucli.Context, name string) {
			fmt.Fprintf(c.App.ErrWriter, "p2ptun: unknown command %q: see `p2ptun --help`\n", name)
		},
		Before: func(c *ucli.Context) error {
			first := c.Args().First()
			// urfave reports unknown commands through CommandNotFound
			// only; make them a usage error.
			if first != "" && c.App.Command(first) == nil {
				return usagef(fmt.Errorf("unknown command %q: see `p2ptun --help`", first))
			}
			if c.Bool("version") && first != "" {
				return usagef(fmt.Errorf("--version takes no command; use `p2ptun --version` or `p2ptun version`"))
			}
			if d := c.Duration("timeout"); d < 0 {
				return usagef(fmt.Errorf("--timeout %s: use a positive duration like 30s, or 0 to wait forever", d))
			}
			if first == "" || first == "version" || first == "help" || first == "completion" || first == "man" {
				return nil
			}
			return checkHome(c)
		},
		// Without a command: --version, or the help.
		Action: func(c *ucli.Context) error {
			if c.Bool("version") {
				return printVersion(c)
			}
			return ucli.ShowAppHelp(c)
		},
		// Completion from urfave itself: `completion bash` and `zsh` call
		// p2ptun back with --generate-bash-completion.
		EnableBashCompletion: true,
	}
	setUsageErrors(app.Commands)
	return app
}

// setUsageErrors makes flag errors of every command a usage error (exit 2)
// reported in one line, instead of urfave's help dump and exit 1. It also
// gives every command with subcommands an Action for an unknown one: urfave
// would run the parent's Action, by default its help, and exit 0, so that
// `access dney PEER` looked like a success to a script.
func setUsageErrors(cmds []*ucli.Command, parents ...string) {
	for _, c := range cmds {
		path := strings.Join(append(append([]string{"p2ptun"}, parents...), c.Name), " ")
		c.OnUsageError = func(_ *ucli.Context, err error, _ bool) error {
			return usagef(fmt.Errorf("%w; see `%s --help`", err, path))
		}
		if len(c.Subcommands) > 0 && c.Action == nil {
			c.Action = unknownSubcommand(path, c)
		}
		setUsageErrors(c.Subcommands, append(parents, c.Name)...)
	}
}

// unknownSubcommand is the Action of a parent command: urfave runs it only
// when no subcommand matched. Without arguments it prints the parent's
// help, as before; otherwise the first argument is a subcommand that does
// not exist, a usage error naming the valid ones.
func unknownSubcommand(path string, parent *ucli.Command) ucli.ActionFunc {
	return func(c *ucli.Context) error {
		if c.NArg() == 0 {
			return ucli.ShowSubcommandHelp(c)
		}
		var names []string
		for _, s := range parent.Subcommands {
			if !s.Hidden && s.Name != "help" {
				names = append(names, s.Name)
			}
		}
		return usagef(fmt.Errorf("unknown command %q: use one of %s; see `%s --help`",
			strings.TrimPrefix(path, "p2ptun ")+" "+c.Args().First(), strings.Join(names, ", "), path))
	}
}

func jsonFlag() ucli.Flag { return &ucli.BoolFlag{Name: "json", Usage: "print machine-readable JSON"} }

func defaultHome() string {
	h, err := os.UserHomeDir()
	if err != nil {
		return config.DefaultHome
	}
	return filepath.Join(h, config.DefaultHome)
}

// checkHome refuses a --home that cannot be one, before a command reads,
// creates or dials anything in it: an empty path (which would mean the
// current directory) or an existing file.
func checkHome(c *ucli.Context) error {
	home := homeDir(c)
	if home == "" {
		return usagef(errors.New("--home (or P2PTUN_HOME) is empty: name p2ptun's home directory, or leave it unset for ~/.p2ptun"))
	}
	if st, err := os.Stat(home); err == nil && !st.IsDir() {
		return fmt.Errorf("%w: home %s is a file, not a directory: pass --home a directory, or a path where p2ptun may create one", config.ErrInvalid, home)
	}
	return nil
}

// homeDir returns the --home directory.
func homeDir(c *ucli.Context) string { return c.String("home") }

// apiPath returns --api, or the socket inside home.
func apiPath(c *ucli.Context) string {
	if p := c.String("api"); p != "" {
		return p
	}
	return filepath.Join(homeDir(c), config.APISocket)
}

// client returns an API client with the global --timeout, which a
// command's own --timeout (wait's) does not hide.
func client(c *ucli.Context) *api.Client {
	cl := api.NewClient(apiPath(c))
	cl.Timeout = rootContext(c).Duration("timeout")
	return cl
}

// rootContext returns the app's context in c's lineage: the one whose
// flags are the global ones.
func rootContext(c *ucli.Context) *ucli.Context {
	l := c.Lineage()
	for i := len(l) - 1; i >= 0; i-- {
		if l[i].Command != nil && l[i].Command.Name == c.App.Name {
			return l[i]
		}
	}
	return c
}

// wantJSON reports whether --json was given to the command or globally.
func wantJSON(c *ucli.Context) bool {
	for _, x := range c.Lineage() {
		if x.Bool("json") {
			return true
		}
	}
	return false
}

func printJSON(c *ucli.Context, v any) error {
	return api.WriteJSON(c.App.Writer, v, "  ")
}

// args checks the number of positional arguments.
func args(c *ucli.Context, n int, names string) ([]string, error) {
	if c.NArg() != n {
		name := commandPath(c)
		return nil, usagef(fmt.Errorf("%s takes %d argument(s): %s (got %d); see `p2ptun %s --help`",
			name, n, names, c.NArg(), name))
	}
	return c.Args().Slice(), nil
}

// commandPath names the running command with its parents: "access deny".
func commandPath(c *ucli.Context) string {
	var names []string
	for _, x := range c.Lineage() {
		if x.Command != nil && x.Command.Name != "" && x.Command.Name != c.App.Name {
			names = append([]string{x.Command.Name}, names...)
		}
	}
	return strings.Join(names, " ")
}
