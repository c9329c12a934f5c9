package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/p2ptun/p2ptun/bench/measure"
	"github.com/p2ptun/p2ptun/bench/procs"
	"github.com/p2ptun/p2ptun/bench/report"
)

// active is a row during the run: its setup and what was measured.
type active struct {
	row
	setup *setup
	res   *report.RowResult
	// cpu and bytes of the throughput measurements, per connection
	// count, per round, per daemon: CPU-s/GB is computed per round.
	cpu   map[int][]map[string]float64
	bytes map[int][]float64
	round int // of the samples being taken
}

// A measurement is taken on every measured row, round after round.
type measurement struct {
	name string
	f    func(a *active, round int) error
}

// measurements are the throughput and new-connection measurements, in
// the order each round takes them.
func measurements(cfg config) []measurement {
	return []measurement{
		{"upload, 1 connection", func(a *active, r int) error { return a.bulk(r, 1, measure.Upload, "mbps_up_1", cfg.Duration) }},
		{"download, 1 connection", func(a *active, r int) error { return a.bulk(r, 1, measure.Download, "mbps_down_1", cfg.Duration) }},
		{"upload, 8 connections", func(a *active, r int) error { return a.bulk(r, parallel, measure.Upload, "mbps_up_8", cfg.Duration) }},
		{"download, 8 connections", func(a *active, r int) error {
			return a.bulk(r, parallel, measure.Download, "mbps_down_8", cfg.Duration)
		}},
		{"new connections", func(a *active, r int) error { return a.newConns(cfg.Clients, cfg.Duration) }},
		{fmt.Sprintf("new connections, %d a second", cfg.Paced), func(a *active, r int) error { return a.pacedConns(cfg.Paced, cfg.Duration) }},
	}
}

// sample records a row metric's value in the current round.
func (a *active) sample(name string, v float64) {
	a.res.Metrics[name] = a.res.Metrics[name].Add(a.round, v)
}

func (a *active) daemonSample(daemon, name string, v float64) {
	d := a.res.Daemon(daemon)
	d.Metrics[name] = d.Metrics[name].Add(a.round, v)
}

// memKiB is a daemon's memory: VmRSS, or for a forking daemon the PSS of
// it and its children.
func memKiB(p proc) (float64, error) {
	if p.Tree {
		return measure.TreePSSKiB(p.PID)
	}
	return measure.RSSKiB(p.PID)
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
		if v, err := measure.StatusKiB(fmt.Sprintf("/proc/%d/status", p.PID), "RssAnon"); err == nil {
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
			err := procs.Poll(context.Background(), 10*time.Second, func() error {
				if len(measure.ChildPIDs(p.PID)) > 0 {
					return errors.New("children still running")
				}
				return nil
			})
			if err != nil {
				// Their CPU would be missing from the reading.
				return nil, fmt.Errorf("%s: %w", p.Name, err)
			}
		}
		v, err := measure.TreeCPU(p.PID)
		if err != nil {
			return nil, err
		}
		out[p.Name] = v
	}
	return out, nil
}

type bulkFunc func(addr string, n int, d time.Duration) (measure.Transfer, error)

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
	a.sample(metric, t.MBps())
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
	r := measure.NewConns(a.setup.Addr, clients, d)
	if r.Done == 0 {
		return fmt.Errorf("no connection completed (%d errors)", r.Errors)
	}
	a.sample("conns_per_s", r.Rate)
	a.sample("ttfb_p50_ms", measure.Percentile(r.TTFB, 0.50))
	a.sample("ttfb_p99_ms", measure.Percentile(r.TTFB, 0.99))
	if r.Errors > 0 {
		return fmt.Errorf("%d of %d new connections failed", r.Errors, r.Errors+r.Done)
	}
	return nil
}

func (a *active) pacedConns(rate int, d time.Duration) error {
	r := measure.PacedConns(a.setup.Addr, rate, d)
	if r.Done == 0 {
		return fmt.Errorf("no paced connection completed (%d errors)", r.Errors)
	}
	a.sample("paced_ttfb_p50_ms", measure.Percentile(r.TTFB, 0.50))
	a.sample("paced_ttfb_p99_ms", measure.Percentile(r.TTFB, 0.99))
	if r.Errors > 0 {
		return fmt.Errorf("%d of %d paced connections failed", r.Errors, r.Errors+r.Done)
	}
	return nil
}

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
	h := measure.Hold(s.Addr, n, cfg.HeldConc)
	defer h.Close()
	alive := h.EchoAll(cfg.HeldConc)
	a.sample(report.HeldKey(n), float64(alive))
	// Memory per connection means something only when all are there.
	if alive == n {
		for _, p := range s.Daemons {
			if v, err := memKiB(p); err == nil {
				a.daemonSample(p.Name, fmt.Sprintf("rss_kib_per_conn_%d", n), (v-idle[p.Name])/float64(alive))
			}
		}
	}
	if alive < n {
		why := fmt.Sprintf("%d of %d held: %d opened in %v (%d failed to open", alive, n, h.Opened(), h.Took.Round(time.Millisecond), h.Failed)
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
