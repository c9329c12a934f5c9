package cli

import (
	"strings"

	ucli "github.com/urfave/cli/v2"
)

// permute moves flags written after positional arguments in front of them,
// so that `listen /x/web ADDR --allow PEER` parses as users expect (the
// flag package stops at the first positional argument). It knows which
// flags take a value from the commands' own definitions.
func permute(app *ucli.App, args []string) []string {
	out := make([]string, 0, len(args))
	flags := app.Flags
	cmds := app.Commands
	i := 0
	sawCommand := false
	// Leading flags (global, then a command's) stay where they are; each
	// command or subcommand name switches to its own flags.
	for i < len(args) {
		a := args[i]
		if a == "--" {
			return append(out, args[i:]...)
		}
		if isFlag(a) {
			if sawCommand {
				break // a command's flags: sorted out below
			}
			out = append(out, a)
			if takesValue(flags, a) && i+1 < len(args) {
				out = append(out, args[i+1])
				i++
			}
			i++
			continue
		}
		var next *ucli.Command
		for _, c := range cmds {
			if c.HasName(a) {
				next = c
			}
		}
		if next == nil {
			break
		}
		out = append(out, a)
		flags, cmds = next.Flags, next.Subcommands
		sawCommand = true
		i++
	}
	var global, local, pos []string
	for ; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			pos = append(pos, args[i:]...)
			break
		}
		if !isFlag(a) {
			pos = append(pos, a)
			continue
		}
		// A global flag written after the command moves in front of it,
		// unless the command has a flag of the same name (--json).
		dst, fs := &local, flags
		if !defines(flags, a) && defines(app.Flags, a) {
			dst, fs = &global, app.Flags
		}
		*dst = append(*dst, a)
		if takesValue(fs, a) && i+1 < len(args) {
			*dst = append(*dst, args[i+1])
			i++
		}
	}
	out = append(global, out...)
	out = append(out, local...)
	return append(out, pos...)
}

func flagName(a string) string {
	name, _, _ := strings.Cut(strings.TrimLeft(a, "-"), "=")
	return name
}

func defines(flags []ucli.Flag, a string) bool {
	for _, f := range flags {
		for _, n := range f.Names() {
			if n == flagName(a) {
				return true
			}
		}
	}
	return false
}

func isFlag(a string) bool { return len(a) > 1 && a[0] == '-' }

func takesValue(flags []ucli.Flag, a string) bool {
	if strings.Contains(a, "=") {
		return false
	}
	name := strings.TrimLeft(a, "-")
	for _, f := range flags {
		for _, n := range f.Names() {
			if n == name {
				_, isBool := f.(*ucli.BoolFlag)
				return !isBool
			}
		}
	}
	return false
}
