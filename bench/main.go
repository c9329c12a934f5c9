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
	"encoding/json"
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
}

func main() {
	if os.Getenv(roleEnv) == "target" {
		if err := serveTarget(); err != nil {
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
	if cfg.Render != "" {
		err = render(cfg.Render, cfg.Out, os.Stdout)
	} else {
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

// socatMaxHeld: socat forks a process per connection; holding more than
// this many is a fork bomb on a shared machine, so it is not run.
const socatMaxHeld = 1000

// active is a row during the run: its setup and what was measured.
type active struct {
	row
	setup *setup
	res   *RowResult
	// cpu and bytes of the throughput measurements, per connection
	// count, per round, per daemon: CPU-s/GB is computed per round.
	cpu   map[int][]map[string]float64
	bytes map[int][]float64
	round int // of the samples being taken
}

// run measures every row and writes the results; it returns them too.
func run(ctx context.Context, cfg config, stdout, stderr io.Writer) (*Results, error) {
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

	res := &Results{Machine: machine(cfg.P2ptun), Settings: settings(cfg, fdLimit)}
	started := time.Now()
	tgt, err := startTarget()
	if err != nil {
		return nil, err
	}
	defer tgt.Close()

	var rs []*active
	for _, r := range rows(cfg) {
		a := &active{row: r, res: &RowResult{Key: r.Key, Name: r.Name, Skip: r.Skip,
			Metrics: map[string]*Stat{}, Notes: map[string]string{}},
			cpu: map[int][]map[string]float64{}, bytes: map[int][]float64{}}
		res.Rows = append(res.Rows, a.res)
		rs = append(rs, a)
	}
	defer func() {
		for _, a := range rs {
			if a.setup != nil {
				a.setup.Close()
			}
		}
	}()

	// Throughput and new connections: one long-lived setup per row.
	for _, a := range rs {
		if a.Skip != "" {
			continue
		}
		if a.setup, err = startRow(ctx, cfg, a.row, tgt.addr); err != nil {
			// One row that cannot start must not cost the others.
			a.res.addError(err.Error())
			a.Skip, a.res.Skip = "did not start", "did not start"
			continue
		}
		a.idle()
	}
	type measurement struct {
		name string
		f    func(a *active, round int) error
	}
	ms := []measurement{
		{"upload, 1 connection", func(a *active, r int) error { return a.bulk(r, 1, upload, "mbps_up_1", cfg.Duration) }},
		{"download, 1 connection", func(a *active, r int) error { return a.bulk(r, 1, download, "mbps_down_1", cfg.Duration) }},
		{"upload, 8 connections", func(a *active, r int) error { return a.bulk(r, parallel, upload, "mbps_up_8", cfg.Duration) }},
		{"download, 8 connections", func(a *active, r int) error { return a.bulk(r, parallel, download, "mbps_down_8", cfg.Duration) }},
		{"new connections", func(a *active, r int) error { return a.newConns(cfg.Clients, cfg.Duration) }},
		{fmt.Sprintf("new connections, %d a second", cfg.Paced), func(a *active, r int) error { return a.pacedConns(cfg.Paced, cfg.Duration) }},
	}
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
					a.res.addError(fmt.Sprintf("round %d, %s: %v", round+1, m.name, err))
				}
			}
		}
	}
	for _, a := range rs {
		a.cpuPerGB()
		if a.setup != nil {
			a.setup.Close()
			a.setup = nil
		}
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
					a.res.Notes[heldKey(n)] = why
					continue
				}
				a.round = round
				if err := a.hold(ctx, cfg, tgt.addr, n); err != nil {
					a.res.addError(fmt.Sprintf("round %d, hold %d: %v", round+1, n, err))
				}
			}
		}
	}
	res.UDP = measureUDP(ctx, cfg, logf) // udp.go
	for _, a := range rs {
		a.res.summarize()
	}
	res.computeRatios()
	res.Machine.LoadEnd = loadavg()
	res.Settings.Seconds = time.Since(started).Round(time.Second).Seconds()

	table := formatTables(res)
	fmt.Fprint(stdout, table)
	return res, writeOutputs(cfg.Out, res, table)
}

// render rewrites the table and the chart from a results.json.
func render(from, out string, stdout io.Writer) error {
	b, err := os.ReadFile(from)
	if err != nil {
		return err
	}
	var res Results
	if err := json.Unmarshal(b, &res); err != nil {
		return fmt.Errorf("%s: %w", from, err)
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	table := formatTables(&res)
	fmt.Fprint(stdout, table)
	return writeOutputs(out, &res, table)
}

// heldSkip says why n held connections are not measured on r, if so.
func heldSkip(r row, n int, fdLimit uint64) string {
	if need := uint64(n) + 256; need > fdLimit {
		return fmt.Sprintf("fd limit: needs %d file descriptors in one process, the hard limit is %d", need, fdLimit)
	}
	if r.Key == "socat" && n > socatMaxHeld {
		return fmt.Sprintf("not run: socat forks a process per connection (run up to %d)", socatMaxHeld)
	}
	return ""
}

// raiseFDLimit raises this process's open-file limit to its hard limit,
// which the daemons, socat and the target inherit, and returns it.
func raiseFDLimit() uint64 {
	var l syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
		return 0
	}
	l.Cur = l.Max
	syscall.Setrlimit(syscall.RLIMIT_NOFILE, &l)
	return l.Max
}

// sample records a row metric's value in the current round.
func (a *active) sample(name string, v float64) {
	a.res.Metrics[name] = a.res.Metrics[name].add(a.round, v)
}

func (a *active) daemonSample(daemon, name string, v float64) {
	d := a.res.daemon(daemon)
	d.Metrics[name] = d.Metrics[name].add(a.round, v)
}

// memKiB is a daemon's memory: VmRSS, or for a forking daemon the PSS of
// it and its children.
func memKiB(p proc) (float64, error) {
	if p.Tree {
		return treePssKiB(p.PID)
	}
	return rssKiB(p.PID)
}

// idle records each daemon's memory now, as a fresh daemon's idle RSS,
// and returns it.
func (a *active) idle() map[string]float64 {
	out := map[string]float64{}
	for _, p := range a.setup.Daemons {
		if v, err := memKiB(p); err == nil {
			out[p.Name] = v
			a.daemonSample(p.Name, "idle_rss_mib", v/1024)
		}
		if p.Tree {
			continue
		}
		// The daemon's own memory; the rest of VmRSS is its binary's
		// pages, shared with other processes and the page cache.
		if v, err := statusKiB(fmt.Sprintf("/proc/%d/status", p.PID), "RssAnon"); err == nil {
			a.daemonSample(p.Name, "idle_anon_mib", v/1024)
		}
	}
	return out
}

// cpuNow reads every daemon's CPU seconds once no forked child is left
// (socat's children exit a moment after their connection closes).
func (a *active) cpuNow() (map[string]float64, error) {
	out := map[string]float64{}
	for _, p := range a.setup.Daemons {
		if p.Tree {
			err := poll(context.Background(), 10*time.Second, func() error {
				if len(childPIDs(p.PID)) > 0 {
					return errors.New("children still running")
				}
				return nil
			})
			if err != nil {
				// Their CPU would be missing from the reading.
				return nil, fmt.Errorf("%s: %w", p.Name, err)
			}
		}
		v, err := treeCPU(p.PID)
		if err != nil {
			return nil, err
		}
		out[p.Name] = v
	}
	return out, nil
}

type bulkFunc func(addr string, n int, d time.Duration) (transfer, error)

// bulk runs one throughput measurement and records MB/s, and the
// daemons' CPU and the bytes for CPU-s/GB.
func (a *active) bulk(round, n int, f bulkFunc, metric string, d time.Duration) error {
	before, err := a.cpuNow()
	if err != nil {
		return err
	}
	t, err := f(a.setup.Addr, n, d)
	if err != nil {
		return err
	}
	after, err := a.cpuNow()
	if err != nil {
		return err
	}
	a.sample(metric, t.mbps())
	for len(a.cpu[n]) <= round {
		a.cpu[n] = append(a.cpu[n], map[string]float64{})
		a.bytes[n] = append(a.bytes[n], 0)
	}
	for name, v := range after {
		a.cpu[n][round][name] += v - before[name]
	}
	a.bytes[n][round] += float64(t.Bytes)
	return nil
}

// cpuPerGB turns the per-round CPU and bytes into CPU-s/GB samples.
func (a *active) cpuPerGB() {
	for n, rounds := range a.cpu {
		for i, cpu := range rounds {
			if a.bytes[n][i] == 0 {
				continue
			}
			a.round = i
			for name, sec := range cpu {
				a.daemonSample(name, fmt.Sprintf("cpu_s_per_gb_%d", n), sec/(a.bytes[n][i]/1e9))
			}
		}
	}
}

func (a *active) newConns(clients int, d time.Duration) error {
	r := newConns(a.setup.Addr, clients, d)
	if r.Done == 0 {
		return fmt.Errorf("no connection completed (%d errors)", r.Errors)
	}
	a.sample("conns_per_s", r.Rate)
	a.sample("ttfb_p50_ms", percentile(r.TTFB, 0.50))
	a.sample("ttfb_p99_ms", percentile(r.TTFB, 0.99))
	if r.Errors > 0 {
		return fmt.Errorf("%d of %d new connections failed", r.Errors, r.Errors+r.Done)
	}
	return nil
}

func (a *active) pacedConns(rate int, d time.Duration) error {
	r := pacedConns(a.setup.Addr, rate, d)
	if r.Done == 0 {
		return fmt.Errorf("no paced connection completed (%d errors)", r.Errors)
	}
	a.sample("paced_ttfb_p50_ms", percentile(r.TTFB, 0.50))
	a.sample("paced_ttfb_p99_ms", percentile(r.TTFB, 0.99))
	if r.Errors > 0 {
		return fmt.Errorf("%d of %d paced connections failed", r.Errors, r.Errors+r.Done)
	}
	return nil
}

func heldKey(n int) string { return fmt.Sprintf("held_%d", n) }

// hold starts the row afresh, holds n connections open and records how
// many answered an echo and the daemons' memory per connection above
// their idle.
func (a *active) hold(ctx context.Context, cfg config, target string, n int) error {
	s, err := startRow(ctx, cfg, a.row, target)
	if err != nil {
		return err
	}
	a.setup = s
	defer func() { s.Close(); a.setup = nil }()
	idle := a.idle()
	h := hold(s.Addr, n, cfg.HeldConc)
	defer h.Close()
	alive := h.echoAll(cfg.HeldConc)
	a.sample(heldKey(n), float64(alive))
	// Memory per connection means something only when all are there.
	if alive == n {
		for _, p := range s.Daemons {
			if v, err := memKiB(p); err == nil {
				a.daemonSample(p.Name, fmt.Sprintf("rss_kib_per_conn_%d", n), (v-idle[p.Name])/float64(alive))
			}
		}
	}
	if alive < n {
		why := fmt.Sprintf("%d of %d held: %d opened in %v (%d failed to open", alive, n, len(h.conns), h.Took.Round(time.Millisecond), h.Failed)
		if h.Stopped != "" {
			why += "; " + h.Stopped
		}
		why += "), then " + fmt.Sprint(alive) + " echoed"
		if logs := s.logSummary(); logs != "" {
			why += "; daemon logs: " + logs
		}
		return errors.New(why)
	}
	return nil
}
