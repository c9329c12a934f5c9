package cli

import (
	"context"
	"fmt"
	"io"
	"os"
	"time"

	ucli "github.com/urfave/cli/v2"
	"golang.org/x/term"

	"github.com/p2ptun/p2ptun/api"
)

// ANSI sequences for redrawing in place on a terminal.
const (
	ansiHome       = "\x1b[H\x1b[2J" // cursor home, clear screen
	ansiHideCursor = "\x1b[?25l"
	ansiShowCursor = "\x1b[?25h"
)

func topCommand() *ucli.Command {
	return &ucli.Command{
		Name:  "top",
		Usage: "watch live tunnels and streams with their throughput",
		Description: "Polls the daemon every --interval and shows its tunnels and live streams with the\n" +
			"bytes each moved per second since the previous poll, busiest streams first. On a\n" +
			"terminal it redraws in place until interrupted; otherwise it prints one snapshot per\n" +
			"interval. Each snapshot needs two polls, so the first appears after one interval.",
		Flags: []ucli.Flag{
			&ucli.DurationFlag{Name: "interval", Value: time.Second, Usage: "time between polls"},
			&ucli.IntFlag{Name: "iterations", Aliases: []string{"n"}, Usage: "print `N` snapshots, then exit (0: run until interrupted)"},
			&ucli.BoolFlag{Name: "once", Usage: "print one snapshot and exit (same as -n 1)"},
		},
		Action: func(c *ucli.Context) error {
			if _, err := args(c, 0, "none"); err != nil {
				return err
			}
			o := topOptions{interval: c.Duration("interval"), frames: c.Int("iterations")}
			if o.interval <= 0 {
				return usagef(fmt.Errorf("--interval %s: use a positive duration like 1s or 250ms", o.interval))
			}
			if o.frames < 0 || c.IsSet("iterations") && o.frames == 0 {
				return usagef(fmt.Errorf("--iterations %d: use a positive count, or leave it out to run until interrupted", o.frames))
			}
			if c.Bool("once") {
				if c.IsSet("iterations") && o.frames != 1 {
					return usagef(fmt.Errorf("--once and --iterations %d disagree; pass one of them", o.frames))
				}
				o.frames = 1
			}
			if f, ok := c.App.Writer.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
				o.tty = true
				o.size = func() (int, int) {
					w, h, err := term.GetSize(int(f.Fd()))
					if err != nil {
						return 0, 0
					}
					return w, h
				}
			}
			return runTop(c.Context, apiSource{client(c)}, c.App.Writer, o)
		},
	}
}

type topOptions struct {
	interval time.Duration
	frames   int  // snapshots to print; 0 means until ctx ends
	tty      bool // redraw in place with ANSI sequences
	// size reports the terminal's width and height (0 if unknown).
	size func() (width, height int)
}

// topSample is one poll of the daemon.
type topSample struct {
	at        time.Time
	listeners []api.Listener
	streams   []api.Stream
}

// topSource polls a daemon; apiSource is the real one.
type topSource interface {
	sample(context.Context) (topSample, error)
}

type apiSource struct{ c *api.Client }

func (s apiSource) sample(ctx context.Context) (topSample, error) {
	ls, err := s.c.Listeners(ctx)
	if err != nil {
		return topSample{}, err
	}
	ss, err := s.c.Streams(ctx)
	if err != nil {
		return topSample{}, err
	}
	return topSample{at: time.Now(), listeners: ls.Listeners, streams: ss.Streams}, nil
}

// runTop polls src every o.interval and prints a snapshot after each poll
// but the first, until o.frames snapshots are out or ctx ends (SIGINT),
// which is a clean exit. On a terminal it hides the cursor while it runs
// and always shows it again.
func runTop(ctx context.Context, src topSource, w io.Writer, o topOptions) error {
	prev, err := src.sample(ctx)
	if err != nil {
		return err
	}
	if o.tty {
		io.WriteString(w, ansiHideCursor)
		defer io.WriteString(w, ansiShowCursor)
	}
	tick := time.NewTicker(o.interval)
	defer tick.Stop()
	for i := 0; o.frames == 0 || i < o.frames; i++ {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		cur, err := src.sample(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		var width, height int
		if o.tty {
			io.WriteString(w, ansiHome)
			if o.size != nil {
				width, height = o.size()
			}
		} else if i > 0 {
			io.WriteString(w, "\n")
		}
		if _, err := io.WriteString(w, renderTop(topRates(prev, cur), width, height)); err != nil {
			return err
		}
		prev = cur
	}
	return nil
}
