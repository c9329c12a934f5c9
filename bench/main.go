// Command bench measures p2ptun against raw loopback and socat on this
// machine, in one run: throughput, CPU per gigabyte, new connections per
// second, connections held open, and memory. It drives the p2ptun binary
// (built by `make bench`) as users run it, never p2ptun's packages, and
// interleaves the rows (A B C D A B C D …) so that drift on a busy machine
// falls on every row alike; it reports medians. It prints a table and
// writes results.json, results.txt and results.svg to -out.
//
// Timings never pass or fail anything: a person reads the table.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/p2ptun/p2ptun/bench/measure"
	"github.com/p2ptun/p2ptun/bench/procs"
	"github.com/p2ptun/p2ptun/bench/report"
)

// config is what the flags choose.
type config struct {
	P2ptun   string
	Out      string
	Rounds   int
	Duration time.Duration
	Clients  int
	Paced    int // new connections a second for the paced time to first byte
	Held     []int
	HeldConc int
	Quick    bool
	Render   string
	Spread   string
}

func main() {
	if os.Getenv(measure.RoleEnv) == "target" {
		if err := measure.ServeTarget(); err != nil {
			fmt.Fprintln(os.Stderr, "bench target:", err)
			os.Exit(1)
		}
		return
	}
	cfg, err := parseFlags(os.Args[1:], os.Stderr)
	if err != nil {
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	switch {
	case cfg.Spread != "":
		err = spread(strings.Split(cfg.Spread, ","), cfg.Out, os.Stdout)
	case cfg.Render != "":
		err = render(cfg.Render, cfg.Out, os.Stdout)
	default:
		_, err = run(ctx, cfg, os.Stdout, os.Stderr)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func parseFlags(args []string, stderr io.Writer) (config, error) {
	var (
		cfg  config
		held string
	)
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&cfg.P2ptun, "p2ptun", "bin/p2ptun", "the p2ptun binary to measure (make bench builds it)")
	fs.StringVar(&cfg.Out, "out", "docs/bench", "directory for results.json, results.txt and results.svg")
	fs.IntVar(&cfg.Rounds, "rounds", 5, "rounds of every measurement; medians are reported")
	fs.DurationVar(&cfg.Duration, "duration", 2*time.Second, "length of each throughput and new-connections measurement")
	fs.IntVar(&cfg.Clients, "clients", 4, "concurrent clients opening new connections")
	fs.IntVar(&cfg.Paced, "paced", 500, "new connections a second for the time to first byte at a fixed rate")
	fs.StringVar(&held, "held", "1000,10000", "numbers of connections to hold open, comma-separated")
	fs.IntVar(&cfg.HeldConc, "held-conc", 64, "connections being opened at once while filling the held ones")
	fs.StringVar(&cfg.Render, "render", "", "measure nothing: rewrite results.txt and results.svg in -out from this results.json")
	fs.StringVar(&cfg.Spread, "spread", "", "measure nothing: set these results.json files (comma-separated, one per run) side by side, the goals over the runs, into spread.txt in -out")
	fs.BoolVar(&cfg.Quick, "quick", false, "a smoke run of a few seconds: 1 round, short measurements, 20 and 100 held connections")
	if err := fs.Parse(args); err != nil {
		return cfg, err
	}
	if fs.NArg() > 0 {
		err := fmt.Errorf("unexpected argument %q: bench takes only flags (see -h)", fs.Arg(0))
		fmt.Fprintln(stderr, err)
		return cfg, err
	}
	if cfg.Quick {
		cfg.Rounds, cfg.Duration, held = 1, 250*time.Millisecond, "20,100"
	}
	for _, s := range strings.Split(held, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n <= 0 {
			err := fmt.Errorf("-held %q: want positive numbers separated by commas, e.g. 1000,10000", held)
			fmt.Fprintln(stderr, err)
			return cfg, err
		}
		cfg.Held = append(cfg.Held, n)
	}
	if cfg.Rounds < 1 || cfg.Duration <= 0 || cfg.Clients < 1 || cfg.HeldConc < 1 || cfg.Paced < 1 {
		err := errors.New("-rounds, -duration, -clients, -paced and -held-conc must be positive")
		fmt.Fprintln(stderr, err)
		return cfg, err
	}
	return cfg, nil
}

// parallel is the connection count of the many-connections throughput.
const parallel = 8

// run measures every row and writes the results; it returns them too.
func run(ctx context.Context, cfg config, stdout, stderr io.Writer) (*report.Results, error) {
	if _, err := os.Stat(cfg.P2ptun); err != nil {
		return nil, fmt.Errorf("the p2ptun binary: %w (run `make bench`, or pass -p2ptun PATH)", err)
	}
	abs, err := filepath.Abs(cfg.P2ptun)
	if err != nil {
		return nil, err
	}
	cfg.P2ptun = abs
	if err := os.MkdirAll(cfg.Out, 0o755); err != nil {
		return nil, err
	}
	fdLimit := raiseFDLimit()
	logf := func(format string, a ...any) { fmt.Fprintf(stderr, "bench: "+format+"\n", a...) }

	res := &report.Results{Machine: report.NewMachine(cfg.P2ptun), Settings: settings(cfg, fdLimit)}
	started := time.Now()
	tgt, err := measure.StartTarget()
	if err != nil {
		return nil, err
	}
	defer tgt.Close()
	iperfTo, iperfMs, stopIperf := setupIperf3(ctx, cfg, res, logf) // iperf.go
	defer stopIperf()

	var rs []*active
	for _, r := range rows() {
		a := &active{row: r, res: &report.RowResult{Key: r.Key, Name: r.Name, Skip: r.Skip,
			Metrics: map[string]*report.Stat{}, Notes: map[string]string{}},
			cpu: map[string][]map[string]float64{}, bytes: map[string][]float64{}}
		res.Rows = append(res.Rows, a.res)
		rs = append(rs, a)
	}
	defer func() {
		for _, a := range rs {
			a.closeSetups()
		}
	}()

	// Throughput and new connections: one long-lived setup per row.
	for _, a := range rs {
		if a.Skip != "" {
			continue
		}
		if a.setup, err = startRow(ctx, cfg, a.row, targetDest(tgt.Addr)); err != nil {
			// One row that cannot start must not cost the others.
			a.res.AddError(err.Error())
			a.Skip, a.res.Skip = "did not start", "did not start"
			continue
		}
		a.idle()
		startIperf3Row(ctx, cfg, a, iperfTo)
	}
	ms := append(measurements(cfg), iperfMs...)
	for round := range cfg.Rounds {
		for _, m := range ms {
			logf("round %d/%d: %s", round+1, cfg.Rounds, m.name)
			for _, a := range rs {
				if ctx.Err() != nil {
					return nil, ctx.Err()
				}
				if a.Skip != "" {
					continue
				}
				a.round = round
				if err := m.f(a, round); err != nil {
					a.res.AddError(fmt.Sprintf("round %d, %s: %v", round+1, m.name, err))
				}
			}
		}
	}
	for _, a := range rs {
		a.cpuPerGB()
		a.closeSetups()
	}

	// Held connections: a fresh setup for every sample, so that memory
	// left over from earlier measurements does not hide the cost.
	for round := range cfg.Rounds {
		for _, n := range cfg.Held {
			logf("round %d/%d: hold %d connections", round+1, cfg.Rounds, n)
			for _, a := range rs {
				if ctx.Err() != nil {
					return nil, ctx.Err()
				}
				if a.Skip != "" {
					continue
				}
				if why := heldSkip(a.row, n, fdLimit); why != "" {
					a.res.Notes[report.HeldKey(n)] = why
					continue
				}
				a.round = round
				if err := a.hold(ctx, cfg, targetDest(tgt.Addr), n); err != nil {
					a.res.AddError(fmt.Sprintf("round %d, hold %d: %v", round+1, n, err))
				}
			}
		}
	}
	res.UDP = measureUDP(ctx, cfg, logf) // udp.go
	for _, a := range rs {
		a.res.Summarize()
	}
	res.ComputeRatios()
	res.Machine.LoadEnd = report.LoadAvg()
	res.Settings.Seconds = time.Since(started).Round(time.Second).Seconds()

	table := report.Table(res)
	fmt.Fprint(stdout, table)
	return res, report.Write(cfg.Out, res, table, colors())
}

// settings are the run's knobs as results.json records them.
func settings(cfg config, fdLimit uint64) report.Settings {
	return report.Settings{Rounds: cfg.Rounds, DurationS: cfg.Duration.Seconds(), Clients: cfg.Clients, Paced: cfg.Paced,
		Parallel: parallel, Held: cfg.Held, HeldConc: cfg.HeldConc, FDLimit: fdLimit, Quick: cfg.Quick,
		ChunkKiB: measure.Chunk >> 10, Limits: procs.LimitsTOML, Units: report.Units}
}

// load reads a results.json.
func load(from string) (*report.Results, error) {
	var res report.Results
	if err := report.ReadJSON(from, &res); err != nil {
		return nil, err
	}
	return &res, nil
}

// render rewrites the table and the chart from a results.json.
func render(from, out string, stdout io.Writer) error {
	res, err := load(from)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	table := report.Table(res)
	fmt.Fprint(stdout, table)
	return report.Write(out, res, table, colors())
}

// spread writes the goals over several runs' results.json to stdout and
// to spread.txt in out.
func spread(files []string, out string, stdout io.Writer) error {
	var runs []*report.Results
	for _, f := range files {
		res, err := load(strings.TrimSpace(f))
		if err != nil {
			return err
		}
		runs = append(runs, res)
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	table := report.Spread(runs, files)
	fmt.Fprint(stdout, table)
	return os.WriteFile(filepath.Join(out, "spread.txt"), []byte(table), 0o644)
}

// heldSkip says why n held connections are not measured on r, if so.
func heldSkip(r row, n int, fdLimit uint64) string {
	if need := uint64(n) + 256; need > fdLimit {
		return fmt.Sprintf("fd limit: needs %d file descriptors in one process, the hard limit is %d", need, fdLimit)
	}
	if r.MaxHeld > 0 && n > r.MaxHeld {
		return fmt.Sprintf("not run: %s (run up to %d)", r.MaxHeldWhy, r.MaxHeld)
	}
	return ""
}
