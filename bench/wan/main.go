//go:build linux

// Command wan measures tunnels across an emulated WAN link (package
// bench/wan/link: two network namespaces joined through TUN devices by
// this process, which delays, rate-limits and drops packets), as
// `make bench-wan` runs it: on links of RTT 20 and 100 ms, loss 0 and
// 0.5 %, 100 Mbit/s and 1 Gbit/s, the paths plain TCP (socat), p2ptun
// over TCP, p2ptun over QUIC and kubo's `ipfs p2p` each carry iperf3 (one
// stream, 8 parallel) and a one-byte echo on a new connection (the path's
// peer connection up, and through a new peer). The daemons run in the
// namespaces, each with its own home, as users run them.
//
// Each round visits every path of a link in turn (interleaved, so drift
// on a busy machine falls on all alike); the table gives the median and
// the spread. It writes results.json, results.txt and a chart of the
// medians, results.svg, to -out. Timings never pass or fail anything: a
// person reads the table.
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/p2ptun/p2ptun/bench/procs"
	"github.com/p2ptun/p2ptun/bench/report"
	"github.com/p2ptun/p2ptun/bench/wan/link"
)

// config is what the flags choose.
type config struct {
	P2ptun, Ipfs, Out, Render string
	Spread                    string // measure nothing: these results.json side by side
	Only                      string // measure only the links whose name contains it
	CC                        string // the namespaces' TCP congestion control
	Paths                     string // measure only these paths (keys, comma-separated); empty: all
	Rounds, Seconds, Warm     int
	Quick                     bool
}

func main() {
	cfg, err := parseFlags(os.Args[1:], os.Stderr)
	if err != nil {
		os.Exit(2)
	}
	// SIGHUP too (a closed terminal): the links and daemons are removed on the way out.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
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
		fmt.Fprintln(os.Stderr, "bench-wan:", err)
		os.Exit(1)
	}
}

func parseFlags(args []string, stderr io.Writer) (config, error) {
	var cfg config
	fs := flag.NewFlagSet("bench-wan", flag.ContinueOnError)
	fs.SetOutput(stderr)
	ipfs, _ := exec.LookPath("ipfs")
	fs.StringVar(&cfg.P2ptun, "p2ptun", "bin/p2ptun", "the p2ptun binary to measure (make bench-wan builds it)")
	fs.StringVar(&cfg.Ipfs, "ipfs", ipfs, "kubo's ipfs binary (default: ipfs on PATH; empty skips the kubo path)")
	fs.StringVar(&cfg.Out, "out", "docs/bench/wan", "directory for results.json, results.txt and results.svg")
	fs.IntVar(&cfg.Rounds, "rounds", 3, "rounds on every link; medians and min–max are reported")
	fs.IntVar(&cfg.Seconds, "seconds", 2, "length of each iperf3 run, in seconds (after the omitted slow start)")
	fs.IntVar(&cfg.Warm, "warm", 3, "warm first-byte samples per path and round")
	fs.StringVar(&cfg.Render, "render", "", "measure nothing: rewrite results.txt and results.svg in -out from this results.json")
	fs.StringVar(&cfg.Spread, "spread", "", "measure nothing: set these results.json files (comma-separated, one per run) side by side, the goals over the runs, into spread.txt in -out")
	fs.StringVar(&cfg.CC, "tcp-cc", "", "TCP congestion control in the link's namespaces, one of net.ipv4.tcp_allowed_congestion_control (default: the kernel's for a new namespace)")
	fs.StringVar(&cfg.Paths, "paths", "", "measure only these paths, comma-separated keys: tcp, p2ptun-tcp, p2ptun-quic, kubo (default: all)")
	fs.StringVar(&cfg.Only, "only", "", `measure only the links whose name contains this, e.g. "100ms 1Gbit/s"`)
	fs.BoolVar(&cfg.Quick, "quick", false, "a smoke run of under a minute: one link (20 ms, 100 Mbit/s, 0.5 % loss), 1 round, 1 s runs")
	if err := fs.Parse(args); err != nil {
		return cfg, err
	}
	if fs.NArg() > 0 {
		err := fmt.Errorf("unexpected argument %q: bench-wan takes only flags (see -h)", fs.Arg(0))
		fmt.Fprintln(stderr, err)
		return cfg, err
	}
	if cfg.Quick {
		cfg.Rounds, cfg.Seconds, cfg.Warm = 1, 1, 2
	}
	if cfg.Rounds < 1 || cfg.Seconds < 1 || cfg.Warm < 1 {
		err := errors.New("-rounds, -seconds and -warm must be positive")
		fmt.Fprintln(stderr, err)
		return cfg, err
	}
	return cfg, nil
}

// links are the links measured, in order.
func links(quick bool) []link.Config {
	if quick {
		return []link.Config{{RTT: 20 * time.Millisecond, Rate: 100e6, Loss: 0.005, Seed: 1}}
	}
	var out []link.Config
	for _, rate := range []int64{100e6, 1e9} {
		for _, rtt := range []time.Duration{20 * time.Millisecond, 100 * time.Millisecond} {
			for _, loss := range []float64{0, 0.005} {
				c := link.Config{RTT: rtt, Rate: rate, Loss: loss, Seed: 1}
				if rate >= 1e9 {
					// At MTU 1500 the emulator's ceiling is below 1 Gbit/s
					// on a 2-core machine (see README, WAN links).
					c.MTU = 9000
				}
				out = append(out, c)
			}
		}
	}
	return out
}

// run measures every link and writes the results; it returns them too.
func run(ctx context.Context, cfg config, stdout, stderr io.Writer) (*Results, error) {
	if err := link.Available(); err != nil {
		return nil, fmt.Errorf("the link emulator %w", err)
	}
	if _, err := exec.LookPath("iperf3"); err != nil {
		return nil, errors.New("iperf3 is not installed (Debian package iperf3)")
	}
	abs, err := filepath.Abs(cfg.P2ptun)
	if err == nil {
		_, err = os.Stat(abs)
	}
	if err != nil {
		return nil, fmt.Errorf("the p2ptun binary: %w (run `make bench-wan`, or pass -p2ptun PATH)", err)
	}
	cfg.P2ptun = abs
	if err := os.MkdirAll(cfg.Out, 0o755); err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "p2ptun-bench-wan-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	logf := func(format string, a ...any) { fmt.Fprintf(stderr, "bench-wan: "+format+"\n", a...) }
	started := time.Now()
	res := &Results{Machine: report.NewMachine(cfg.P2ptun), Settings: Settings{Rounds: cfg.Rounds,
		Seconds: cfg.Seconds, Warm: cfg.Warm, Quick: cfg.Quick, Units: Units}}
	for _, lc := range links(cfg.Quick) {
		if !strings.Contains(lc.String(), cfg.Only) {
			continue
		}
		lc.TCPCongestion = cfg.CC
		lr, err := measureLink(ctx, cfg, dir, lc, logf)
		if lr != nil {
			res.Settings.TCPCongestion = lr.TCPCongestion
		}
		if lr != nil {
			res.Links = append(res.Links, lr)
		}
		if err != nil {
			return nil, err
		}
	}
	res.ComputeGoals()
	res.Machine.LoadEnd = report.LoadAvg()
	res.Settings.RunSeconds = time.Since(started).Round(time.Second).Seconds()
	table := Table(res)
	fmt.Fprint(stdout, table)
	return res, Write(cfg.Out, res, table)
}

// measureLink starts a link, its servers and every path, measures them
// in interleaved rounds and stops it all again. Only a cancelled run or
// a link that does not start is an error; a path's failures are its own.
func measureLink(ctx context.Context, cfg config, dir string, lc link.Config, logf func(string, ...any)) (*LinkResult, error) {
	l, err := link.New(lc)
	if err != nil {
		return nil, err
	}
	defer l.Close()
	lc = l.Config()
	lr := &LinkResult{Name: lc.String(), RTTms: float64(lc.RTT) / 1e6, RateMbps: float64(lc.Rate) / 1e6, LossPct: lc.Loss * 100, MTU: lc.MTU}
	lr.TCPCongestion = l.TCPCongestion()
	logf("link %s (MTU %d, TCP congestion control %s)", lr.Name, lc.MTU, lr.TCPCongestion)

	srv := exec.Command("iperf3", "-s", "-p", strconv.Itoa(iperfPort))
	var srvOut bytes.Buffer
	srv.Stdout, srv.Stderr = &srvOut, &srvOut
	iperfSrv, err := procs.Start(srv, l.B.Start)
	if err != nil {
		return lr, fmt.Errorf("iperf3 server: %w", err)
	}
	defer iperfSrv.Stop(5 * time.Second)
	echo, err := startEcho(l.B)
	if err != nil {
		return lr, err
	}
	defer echo.Close()
	err = procs.Poll(ctx, 30*time.Second, func() error {
		if iperfSrv.Exited() {
			return procs.ErrStop
		}
		return listening(l.B, iperfPort)
	})
	if err != nil {
		return lr, fmt.Errorf("iperf3 server: %w: %s", err, firstLine(strings.TrimSpace(srvOut.String())))
	}

	env := &linkEnv{cfg: cfg, l: l, echo: echo.Port(), dir: dir}
	type started struct {
		p   path
		r   *PathResult
		s   *setup
		add func(metric string, round int, v float64)
	}
	var ps []*started
	defer func() {
		for _, p := range ps {
			if p.s != nil {
				p.s.Close()
			}
		}
	}()
	for _, p := range paths() {
		if cfg.Paths != "" && !slices.Contains(strings.Split(cfg.Paths, ","), p.Key) {
			continue
		}
		pr := &PathResult{Key: p.Key, Name: p.Name, Metrics: map[string]*report.Stat{}}
		lr.Paths = append(lr.Paths, pr)
		s, err := p.start(ctx, env)
		if ctx.Err() != nil {
			return lr, ctx.Err()
		}
		if err != nil {
			if errors.Is(err, errSkip) {
				pr.Skip = err.Error()
			} else {
				pr.Skip = "did not start"
				pr.Errors = append(pr.Errors, err.Error())
			}
			logf("  %s: %s", p.Name, firstLine(err.Error()))
			continue
		}
		ps = append(ps, &started{p: p, r: pr, s: s, add: func(metric string, round int, v float64) {
			pr.Metrics[metric] = pr.Metrics[metric].Add(round, v)
		}})
	}
	omit := 0
	if lc.RTT >= 100*time.Millisecond {
		omit = 1
	}
	for round := range cfg.Rounds {
		for _, p := range ps {
			if ctx.Err() != nil {
				return lr, ctx.Err()
			}
			logf("  round %d/%d: %s", round+1, cfg.Rounds, p.p.Name)
			fail := func(what string, err error) {
				p.r.Errors = append(p.r.Errors, fmt.Sprintf("round %d, %s: %s", round+1, what, firstLine(err.Error())))
			}
			for _, n := range []int{1, 8} {
				if v, err := iperf(ctx, l.A, p.s.Iperf, n, cfg.Seconds, omit); err != nil {
					fail(fmt.Sprintf("iperf3 -P %d", n), err)
				} else {
					p.add("mbps_"+strconv.Itoa(n), round, v)
				}
			}
			// The runs' bytes still queued on the link would delay the echo.
			waitIdle(ctx, l)
			for range cfg.Warm {
				if d, err := firstByte(ctx, l.A, p.s.Echo); err != nil {
					fail("warm first byte", err)
				} else {
					p.add("warm_ms", round, float64(d)/1e6)
				}
			}
			if d, err := p.s.cold(ctx); err != nil {
				fail("cold first byte", err)
			} else {
				p.add("cold_ms", round, float64(d)/1e6)
			}
		}
	}
	for _, p := range lr.Paths {
		for _, s := range p.Metrics {
			s.Summarize()
		}
	}
	for dir, name := range []string{"A→B", "B→A"} {
		st := l.Stats(dir)
		dev, err := l.DeviceDrops(dir)
		if err != nil {
			lr.Errors = append(lr.Errors, err.Error())
		}
		lr.EmulatorDrops += dev
		logf("  link %s: %d packets in, %d lost, %d dropped by the queue, %d dropped before the emulator read them", name, st.In, st.Lost, st.Dropped, dev)
	}
	if lr.EmulatorDrops > 0 {
		lr.Errors = append(lr.Errors, fmt.Sprintf("the emulator fell behind: the kernel dropped %d packets it had not read (its ceiling, not the link's, limited some rows)", lr.EmulatorDrops))
	}
	return lr, nil
}

// listening says whether a TCP socket listens on port in e's namespace,
// from the kernel's tables: a probe connection would be a client iperf3's
// server has to get over, and a probe bind could take the port from it.
func listening(e link.End, port int) error {
	want := fmt.Sprintf(":%04X ", port)
	return e.Do(func() error {
		for _, f := range []string{"/proc/thread-self/net/tcp", "/proc/thread-self/net/tcp6"} {
			b, err := os.ReadFile(f)
			if err != nil {
				continue
			}
			for _, line := range strings.Split(string(b), "\n") {
				// sl local_address rem_address st …; st 0A is LISTEN.
				if fs := strings.Fields(line); len(fs) > 3 && strings.HasSuffix(fs[1]+" ", want) && fs[3] == "0A" {
					return nil
				}
			}
		}
		return fmt.Errorf("nothing listens on port %d in %s", port, e.NS)
	})
}

// waitIdle waits until at most a few packets (keepalives) cross the link
// in a quiet period of twice its RTT (at least 100 ms), or 10 s pass.
func waitIdle(ctx context.Context, l *link.Link) {
	quiet := max(100*time.Millisecond, 2*l.Config().RTT)
	total := func() int64 { return l.Stats(link.AtoB).In + l.Stats(link.BtoA).In }
	for end := time.Now().Add(10 * time.Second); time.Now().Before(end) && ctx.Err() == nil; {
		before := total()
		time.Sleep(quiet)
		if total()-before <= 4 {
			return
		}
	}
}

// firstLine is the first line of s (a daemon's log follows some errors).
func firstLine(s string) string {
	for i, c := range s {
		if c == '\n' {
			return s[:i] + " …"
		}
	}
	return s
}

// load reads a results.json and judges its goals again.
func load(from string) (*Results, error) {
	var res Results
	if err := report.ReadJSON(from, &res); err != nil {
		return nil, err
	}
	res.ComputeGoals()
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
	table := Table(res)
	fmt.Fprint(stdout, table)
	return Write(out, res, table)
}

// spread writes the goals over several runs' results.json to stdout and
// to spread.txt in out.
func spread(files []string, out string, stdout io.Writer) error {
	var runs []*Results
	for i, f := range files {
		files[i] = strings.TrimSpace(f)
		res, err := load(files[i])
		if err != nil {
			return err
		}
		runs = append(runs, res)
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	table := Spread(runs, files)
	fmt.Fprint(stdout, table)
	return os.WriteFile(filepath.Join(out, "spread.txt"), []byte(table), 0o644)
}
