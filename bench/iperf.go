package main

import (
	"context"
	"fmt"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/p2ptun/p2ptun/bench/measure"
	"github.com/p2ptun/p2ptun/bench/procs"
	"github.com/p2ptun/p2ptun/bench/report"
)

// iperf3 (Debian's, a tool nobody here wrote) carries a second load
// through every row, in the same rounds as the benchmark's own: each row
// is started a second time toward an iperf3 server on loopback, and the
// client runs against the row's address. Its numbers are the ones a user
// can check without this program.

// iperfTests are iperf3's measurements, in the order each round takes
// them, with the row metric each records (10^6 bytes/s received).
var iperfTests = []struct {
	metric, name string
	test         measure.Iperf3Test
}{
	{"iperf_mbps_up_1", "iperf3, 1 connection up", measure.Iperf3Test{Parallel: 1}},
	{"iperf_mbps_down_1", "iperf3, 1 connection down (-R)", measure.Iperf3Test{Parallel: 1, Reverse: true}},
	{"iperf_mbps_down_8", "iperf3, 8 connections down (-P 8 -R)", measure.Iperf3Test{Parallel: parallel, Reverse: true}},
}

// iperfCPU is the CPU-s/GB metric of all iperf3 measurements together.
const iperfCPU = "iperf_cpu_s_per_gb"

// iperfSkip says why iperf3 is not run, if so.
func iperfSkip() string {
	if _, err := exec.LookPath(measure.Iperf3Bin); err != nil {
		return "iperf3 is not installed (Debian: apt-get install iperf3); its table is left out"
	}
	return ""
}

// startIperf3Server runs `iperf3 -s` on a free loopback port; it serves
// one client at a time, which is all the benchmark runs.
func startIperf3Server(ctx context.Context) (*procs.Running, dest, error) {
	port, err := procs.FreePort()
	if err != nil {
		return nil, dest{}, err
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	r, err := procs.Start(exec.Command(measure.Iperf3Bin, "-s", "-B", "127.0.0.1", "-p", strconv.Itoa(port)), nil)
	if err != nil {
		return nil, dest{}, fmt.Errorf("iperf3 -s: %w", err)
	}
	// A connection that closes at once costs the server one failed test
	// (it says so on its stderr, which nobody reads) and nothing else.
	to := dest{Addr: addr, Ready: dialOnce}
	err = procs.Poll(ctx, 10*time.Second, func() error {
		if r.Exited() {
			return procs.ErrStop
		}
		return to.Ready(addr)
	})
	if err != nil {
		r.Stop(5 * time.Second)
		return nil, dest{}, fmt.Errorf("iperf3 -s did not start: %w", err)
	}
	return r, to, nil
}

// dialOnce connects to addr and closes the connection.
func dialOnce(addr string) error {
	c, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		return err
	}
	return c.Close()
}

// setupIperf3 starts the iperf3 server and records what runs in
// res.Iperf3; it returns the server's destination (nil when iperf3 does
// not run, and why is in res.Iperf3.Skip), the measurements to add to
// every round and the function that stops the server.
func setupIperf3(ctx context.Context, cfg config, res *report.Results, logf func(string, ...any)) (*dest, []measurement, func()) {
	res.Iperf3 = &report.Iperf3Run{Seconds: max(1, int(cfg.Duration.Round(time.Second)/time.Second))}
	if why := iperfSkip(); why != "" {
		res.Iperf3.Skip = why
		logf("%s", why)
		return nil, nil, func() {}
	}
	if out, err := exec.Command(measure.Iperf3Bin, "--version").Output(); err == nil {
		res.Iperf3.Version, _, _ = strings.Cut(string(out), "\n")
	}
	srv, to, err := startIperf3Server(ctx)
	if err != nil {
		res.Iperf3.Skip = err.Error()
		logf("%v", err)
		return nil, nil, func() {}
	}
	return &to, iperfMeasurements(ctx, cfg), func() { srv.Stop(5 * time.Second) }
}

// startIperf3Row starts a's row a second time, toward the iperf3
// server; a row that cannot start has no iperf3 numbers, and says why.
func startIperf3Row(ctx context.Context, cfg config, a *active, to *dest) {
	if to == nil {
		return
	}
	s, err := startRow(ctx, cfg, a.row, *to)
	if err != nil {
		a.res.AddError("toward the iperf3 server: " + err.Error())
		return
	}
	a.iperf = s
}

// iperfMeasurements are the iperf3 measurements of a round.
func iperfMeasurements(ctx context.Context, cfg config) []measurement {
	var out []measurement
	for _, it := range iperfTests {
		out = append(out, measurement{it.name, func(a *active, round int) error {
			return a.runIperf3(ctx, round, it.test, it.metric, cfg.Duration)
		}})
	}
	return out
}

// runIperf3 runs one iperf3 client through the row's iperf3 setup and
// records its MB/s, and the bytes and CPU for iperf_cpu_s_per_gb.
func (a *active) runIperf3(ctx context.Context, round int, t measure.Iperf3Test, metric string, d time.Duration) error {
	if a.iperf == nil {
		return nil // it did not start: recorded once, by startIperf3Row
	}
	return a.withCPU(a.iperf, round, iperfCPU, func() (int64, error) {
		r, err := measure.RunIperf3(ctx, a.iperf.Addr, t, d)
		if err == nil {
			a.sample(metric, r.MBps())
		}
		return r.Bytes, err
	})
}
