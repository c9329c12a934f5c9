package cli

import (
	"fmt"
	"strings"

	ucli "github.com/urfave/cli/v2"

	"github.com/p2ptun/p2ptun/config"
)

// completionFlag is the flag urfave/cli appends to ask a program for its
// completions (App.EnableBashCompletion); the bash and zsh scripts run
// p2ptun with the words typed so far and it.
const completionFlag = "--generate-bash-completion"

// bashCompletion asks p2ptun for the words that may follow the ones typed
// so far (urfave's own mechanism) and offers those that start with the
// current word. It needs nothing but bash: not the bash-completion
// package, whose _init_completion urfave's sample script calls.
const bashCompletion = `# bash completion for p2ptun: source it, or save it as
# /usr/share/bash-completion/completions/p2ptun
_p2ptun_complete() {
	local cur="${COMP_WORDS[COMP_CWORD]}" opts
	local -a words=("${COMP_WORDS[@]:0:COMP_CWORD}")
	if [[ "$cur" == -* ]]; then
		opts=$("${words[@]}" "$cur" ` + completionFlag + ` 2>/dev/null)
	else
		opts=$("${words[@]}" ` + completionFlag + ` 2>/dev/null)
	fi
	local IFS=$'\n'
	COMPREPLY=($(compgen -W "$opts" -- "$cur"))
}
complete -o bashdefault -o default -F _p2ptun_complete p2ptun
`

// zshCompletion is urfave's zsh script for p2ptun.
const zshCompletion = `#compdef p2ptun
# zsh completion for p2ptun: save it as _p2ptun in a directory of $fpath
_p2ptun() {
	local -a opts
	local cur=${words[-1]}
	if [[ "$cur" == -* ]]; then
		opts=("${(@f)$(${words[@]:0:#words[@]-1} ${cur} ` + completionFlag + ` 2>/dev/null)}")
	else
		opts=("${(@f)$(${words[@]:0:#words[@]-1} ` + completionFlag + ` 2>/dev/null)}")
	fi
	if [[ "${opts[1]}" != "" ]]; then
		_describe 'values' opts
	else
		_files
	fi
}
compdef _p2ptun p2ptun
`

var completionShells = []string{"bash", "zsh", "fish"}

func completionCommand() *ucli.Command {
	return &ucli.Command{
		Name:      "completion",
		Usage:     "print a shell completion script for bash, zsh or fish",
		ArgsUsage: "SHELL",
		Description: "Prints the completion script for SHELL. Load it for this shell with\n" +
			"`source <(p2ptun completion bash)`, or install it: `make install` puts all three in place.",
		Action: func(c *ucli.Context) error {
			a, err := args(c, 1, "SHELL (bash, zsh or fish)")
			if err != nil {
				return err
			}
			script, err := completionScript(c.App, a[0])
			if err != nil {
				return err
			}
			_, err = fmt.Fprint(c.App.Writer, script)
			return err
		},
	}
}

// completionScript returns the completion script for shell: fish's is
// generated from the commands and flags (urfave's ToFishCompletion); bash's
// and zsh's call p2ptun back for the words at the cursor.
func completionScript(app *ucli.App, shell string) (string, error) {
	switch shell {
	case "bash":
		return bashCompletion, nil
	case "zsh":
		return zshCompletion, nil
	case "fish":
		s, err := app.ToFishCompletion()
		if err != nil {
			return "", fmt.Errorf("fish completion: %w", err)
		}
		return s, nil
	}
	return "", usagef(fmt.Errorf("completion %q: name a shell, one of %s", shell, strings.Join(completionShells, ", ")))
}

func manCommand() *ucli.Command {
	return &ucli.Command{
		Name:  "man",
		Usage: "print p2ptun's manual page (roff); read it with `p2ptun man | man -l -`",
		Action: func(c *ucli.Context) error {
			if _, err := args(c, 0, "none"); err != nil {
				return err
			}
			// The page documents the default, not this user's home.
			for _, f := range c.App.Flags {
				if h, ok := f.(*ucli.StringFlag); ok && h.Name == "home" {
					h.DefaultText = "~/" + config.DefaultHome
				}
			}
			page, err := c.App.ToManWithSection(1)
			if err != nil {
				return fmt.Errorf("man page: %w", err)
			}
			_, err = fmt.Fprint(c.App.Writer, page)
			return err
		},
	}
}
