package cli

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	ucli "github.com/urfave/cli/v2"

	"github.com/p2ptun/p2ptun/api"
)

func reloadCommand() *ucli.Command {
	return &ucli.Command{
		Name:  "reload",
		Usage: "re-read the daemon's config file and apply the difference (like SIGHUP)",
		Description: "Applies [[listen]]/[[forward]] and [access] from HOME/config.toml: tunnels\n" +
			"that left the file close, new ones start, unchanged ones and their live\n" +
			"streams are untouched. A file that is missing, cannot be read, or does not parse\n" +
			"or validate is rejected whole (exit 4) and nothing changes. A new tunnel that\n" +
			"fails to start is reported and retried with backoff; `p2ptun wait` blocks\n" +
			"until it is up.",
		Flags: []ucli.Flag{jsonFlag()},
		Action: func(c *ucli.Context) error {
			if _, err := args(c, 0, "none"); err != nil {
				return err
			}
			out, err := client(c).Reload(c.Context)
			if err != nil {
				return err
			}
			if wantJSON(c) {
				return printJSON(c, out)
			}
			w := c.App.Writer
			fmt.Fprintf(w, "reloaded: %d added, %d removed, %d unchanged, %d restarted\n",
				len(out.Added), len(out.Removed), len(out.Unchanged), len(out.Restarted))
			for _, x := range []struct {
				mark  string
				names []string
			}{{"+", out.Added}, {"-", out.Removed}, {"~", out.Restarted}} {
				for _, n := range x.names {
					fmt.Fprintf(w, "%s %s\n", x.mark, n)
				}
			}
			for _, f := range out.Failed {
				fmt.Fprintf(w, "! %s (line %d): not up yet, retrying: %s\n", f.Name, f.Line, f.Error)
			}
			if len(out.NeedsRestart) > 0 {
				fmt.Fprintf(w, "restart the daemon to apply the changes to: %s\n", strings.Join(out.NeedsRestart, ", "))
			}
			return nil
		},
	}
}

func waitCommand() *ucli.Command {
	return &ucli.Command{
		Name:  "wait",
		Usage: "block until the daemon answers and all its config tunnels are up",
		Description: "For scripts: `p2ptun daemon & p2ptun wait --timeout 30s && run-tests`. Waits for\n" +
			"the daemon's API to answer (it may not be started yet) and for every [[listen]]\n" +
			"and [[forward]] of its config to be up. Exits 0 when they are, 9 on timeout,\n" +
			"naming what was not up and why.",
		Flags: []ucli.Flag{
			&ucli.DurationFlag{Name: "timeout", Value: time.Minute, Usage: "give up after this long (0: wait forever)"},
			jsonFlag(),
		},
		Action: func(c *ucli.Context) error {
			if _, err := args(c, 0, "none"); err != nil {
				return err
			}
			timeout := c.Duration("timeout")
			if timeout < 0 {
				return usagef(fmt.Errorf("--timeout %s: must not be negative", timeout))
			}
			ctx := c.Context
			if timeout > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, timeout)
				defer cancel()
			}
			st, err := waitUp(ctx, client(c))
			if err != nil {
				if c.Context.Err() != nil {
					return c.Context.Err()
				}
				return fmt.Errorf("%w after %s: %w", ErrTimeout, timeout, err)
			}
			if wantJSON(c) {
				return printJSON(c, st)
			}
			fmt.Fprintf(c.App.Writer, "ready: %d tunnels up\n", len(st.Tunnels))
			return nil
		},
	}
}

// waitUp polls the daemon's status until it is up or ctx ends; then it
// returns why it was not up at the last look.
func waitUp(ctx context.Context, cl *api.Client) (api.Status, error) {
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	why := errors.New("the daemon did not answer")
	for {
		st, err := cl.Status(ctx)
		switch {
		case err == nil && st.Up():
			return st, nil
		case err == nil:
			why = notUp(st)
		case errors.Is(err, api.ErrDaemonNotRunning):
			why = errors.New("no daemon answered on the API socket (is `p2ptun daemon` running with this --home/--api?)")
		case ctx.Err() == nil:
			why = err
		}
		select {
		case <-ctx.Done():
			return st, why
		case <-tick.C:
		}
	}
}

// notUp says which tunnels are not up yet, and why.
func notUp(st api.Status) error {
	if !st.Ready {
		return errors.New("the daemon is still starting its tunnels")
	}
	var parts []string
	for _, t := range st.Tunnels {
		if t.State == api.TunnelUp || t.State == api.TunnelClosed {
			continue
		}
		p := fmt.Sprintf("tunnel %s (line %d) is still starting", t.Name, t.Line)
		if t.State == api.TunnelFailed {
			p = fmt.Sprintf("tunnel %s (line %d) failed: %s", t.Name, t.Line, t.Error)
		}
		parts = append(parts, p)
	}
	return errors.New(strings.Join(parts, "; "))
}
