package cli

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	ucli "github.com/urfave/cli/v2"
	"golang.org/x/term"

	"github.com/p2ptun/p2ptun/api"
)

// ANSI sequences for redrawing in place on a terminal: top draws on the
// alternate screen with the cursor hidden (ansiEnter), and leaves the
// terminal as it found it (ansiLeave), as less and htop do.
const (
	ansiHome   = "\x1b[H\x1b[2J"        // cursor home, clear screen
	ansiEnter  = "\x1b[?1049h\x1b[?25l" // alternate screen, hide the cursor
	ansiLeave  = "\x1b[?25h\x1b[?1049l" // show the cursor, main screen
	quitKeys   = "qQ\x03"               // \x03: Ctrl-C, which a raw terminal sends instead of SIGINT
	terminalNL = "\r\n"                 // a raw terminal does not return the carriage itself
)

func topCommand() *ucli.Command {
	return &ucli.Command{
		Name:  "top",
		Usage: "watch live tunnels and streams with their throughput",
		Description: "Polls the daemon every --interval and shows its tunnels and live streams with the\n" +
			"bytes each moved per second since the previous poll, busiest streams first. On a\n" +
			"terminal it redraws in place on the alternate screen until you press q (or Ctrl-C),\n" +
			"then restores the screen; otherwise it prints one snapshot per interval. Each\n" +
			"snapshot needs two polls, so the first appears after one interval.",
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
			if f, ok := c.App.Reader.(*os.File); ok && o.tty && term.IsTerminal(int(f.Fd())) {
				keys, stop, err := readKeys(f)
				if err == nil {
					defer stop()
					o.keys = keys
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
	// keys are the keys pressed, from a terminal in raw mode (then lines
	// end in \r\n); nil without one. q, Q and Ctrl-C quit.
	keys <-chan byte
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
// but the first, until o.frames snapshots are out, a quit key is pressed
// or ctx ends (SIGINT): each a clean exit. On a terminal it draws on the
// alternate screen with the cursor hidden, and always restores both.
func runTop(ctx context.Context, src topSource, w io.Writer, o topOptions) error {
	prev, err := src.sample(ctx)
	if err != nil {
		return err
	}
	if o.tty {
		io.WriteString(w, ansiEnter)
		defer io.WriteString(w, ansiLeave)
	}
	tick := time.NewTicker(o.interval)
	defer tick.Stop()
	for i := 0; o.frames == 0 || i < o.frames; i++ {
		if !nextTick(ctx, tick.C, o.keys) {
			return nil
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
		frame := renderTop(topRates(prev, cur), width, height)
		if o.keys != nil {
			frame = strings.ReplaceAll(frame, "\n", terminalNL)
		}
		if _, err := io.WriteString(w, frame); err != nil {
			return err
		}
		prev = cur
	}
	return nil
}

// nextTick waits for the next tick and reports true, or false when ctx
// ends or a quit key arrives on keys first; other keys are ignored. Keys
// already typed when the tick comes are read before it counts.
func nextTick(ctx context.Context, tick <-chan time.Time, keys <-chan byte) bool {
	for {
		select {
		case <-ctx.Done():
			return false
		case <-tick:
			for {
				select {
				case k, ok := <-keys:
					if ok && strings.IndexByte(quitKeys, k) >= 0 {
						return false
					}
					if ok {
						continue
					}
				default:
				}
				return true
			}
		case k, ok := <-keys:
			if !ok {
				keys = nil // stdin ended: only ticks and ctx now
				continue
			}
			if strings.IndexByte(quitKeys, k) >= 0 {
				return false
			}
		}
	}
}
