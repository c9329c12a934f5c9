package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/p2ptun/p2ptun/bench/measure"
	"github.com/p2ptun/p2ptun/bench/procs"
	"github.com/p2ptun/p2ptun/bench/report"
)

// A row is one way for the client to reach the target: directly, through
// socat, or through a pair of p2ptun daemons. Everything that differs
// between rows is here, so that a new way to carry the bytes is one more
// entry in rows (its start function in a file of its own if it is long).
type row struct {
	// Key names the row in results.json; Name in the table and the chart.
	Key, Name string
	// Color is the row's bars in results.svg.
	Color string
	// Skip, when set, says why the row is not measured ("not installed").
	Skip string
	// MaxHeld, when set, is the most connections the row is asked to
	// hold, and MaxHeldWhy why.
	MaxHeld    int
	MaxHeldWhy string
	start      func(ctx context.Context, cfg config, target string) (*setup, error)
}

// A setup is a started row: the address clients dial and the processes
// that carry the bytes (none for raw loopback).
type setup struct {
	Addr    string
	Daemons []proc
	stop    func()
	logs    []string // the daemons' log files
}

// logSummary counts the distinct messages in each daemon's log, in the
// order they first appear: `forward: 114× "stream open failed", 1× "…"`.
func (s *setup) logSummary() string {
	var out []string
	for _, path := range s.logs {
		b, _ := os.ReadFile(path)
		var order []string
		count := map[string]int{}
		for _, line := range strings.Split(string(b), "\n") {
			_, msg, ok := strings.Cut(line, ` msg="`)
			if !ok {
				continue
			}
			msg, _, _ = strings.Cut(msg, `"`)
			if count[msg] == 0 {
				order = append(order, msg)
			}
			count[msg]++
		}
		var parts []string
		for _, m := range order {
			parts = append(parts, fmt.Sprintf("%d× %q", count[m], m))
		}
		if len(parts) > 0 {
			out = append(out, filepath.Base(filepath.Dir(path))+": "+strings.Join(parts, ", "))
		}
	}
	return strings.Join(out, "; ")
}

// proc is a process whose CPU and memory the benchmark reads. A tree
// process (socat) forks a child per connection, which is counted with it.
type proc struct {
	Name string
	PID  int
	Tree bool
}

func (s *setup) Close() {
	if s.stop != nil {
		s.stop()
	}
}

// rows are the rows in the order they are measured and shown. The
// baselines come first: raw loopback and socat, whose keys package report
// compares the others with.
func rows() []row {
	socat := row{Key: report.Socat, Name: "socat", Color: "#f28e2b", start: startSocat,
		// Holding more is a fork bomb on a shared machine.
		MaxHeld: 1000, MaxHeldWhy: "socat forks a process per connection"}
	if _, err := exec.LookPath("socat"); err != nil {
		socat.Skip = "not installed"
	}
	return []row{
		{Key: report.Raw, Name: "raw loopback", Color: "#9e9e9e", start: func(context.Context, config, string) (*setup, error) { return &setup{}, nil }},
		socat,
		{Key: "p2ptun-tcp", Name: "p2ptun TCP", Color: "#4e79a7", start: p2ptunStarter("/ip4/127.0.0.1/tcp/0")},
		{Key: "p2ptun-quic", Name: "p2ptun QUIC", Color: "#59a14f", start: p2ptunStarter("/ip4/127.0.0.1/udp/0/quic-v1")},
	}
}

// colors maps each row's key to its color in results.svg.
func colors() map[string]string {
	out := map[string]string{}
	for _, r := range rows() {
		out[r.Key] = r.Color
	}
	return out
}

// startRow starts r and fills in the address to dial for raw loopback.
func startRow(ctx context.Context, cfg config, r row, target string) (*setup, error) {
	s, err := r.start(ctx, cfg, target)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", r.Name, err)
	}
	if s.Addr == "" {
		s.Addr = target
	}
	return s, nil
}

// startSocat runs socat as a forking TCP forwarder, as its manual shows.
// backlog is raised from socat's 5 to the kernel's usual cap, so that
// opening many connections at once measures socat, not SYN retries.
func startSocat(ctx context.Context, _ config, target string) (*setup, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command("socat",
		fmt.Sprintf("TCP-LISTEN:%d,bind=127.0.0.1,fork,reuseaddr,backlog=4096", port), "TCP:"+target)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	r, err := procs.Start(cmd, nil)
	if err != nil {
		return nil, err
	}
	s := &setup{
		Addr:    net.JoinHostPort("127.0.0.1", strconv.Itoa(port)),
		Daemons: []proc{{Name: "socat", PID: cmd.Process.Pid, Tree: true}},
		stop:    func() { r.Stop(5 * time.Second) },
	}
	// Ready once it accepts; a probe connection is a full echo.
	err = procs.Poll(ctx, 10*time.Second, func() error {
		if r.Exited() {
			return procs.ErrStop
		}
		return measure.EchoOnce(s.Addr, time.Second)
	})
	if err != nil {
		s.Close()
		return nil, fmt.Errorf("socat did not start: %v %s", err, strings.TrimSpace(stderr.String()))
	}
	return s, nil
}

// benchProto is the protocol of the benchmark's tunnel.
const benchProto = "/x/bench"

// p2ptunStarter starts two daemons on loopback with swarm address listen
// (one transport): B exposes the target as /x/bench to A only, and A
// forwards a free local port to it. They run as users run them: the
// p2ptun binary, a home made by `p2ptun init`, the CLI for the tunnel.
func p2ptunStarter(listen string) func(context.Context, config, string) (*setup, error) {
	return p2ptunTunnel(listen, "/ip4/127.0.0.1/tcp/0", func(addr string) error { return measure.EchoOnce(addr, 10*time.Second) })
}

// p2ptunTunnel is p2ptunStarter with A's local address local (a TCP or
// UDP port 0) and check, run on the address clients reach.
func p2ptunTunnel(listen, local string, check func(addr string) error) func(context.Context, config, string) (*setup, error) {
	return func(ctx context.Context, cfg config, target string) (_ *setup, err error) {
		dir, err := os.MkdirTemp("", "p2ptun-bench-")
		if err != nil {
			return nil, err
		}
		var ds []*procs.Daemon
		s := &setup{stop: func() {
			for _, d := range ds {
				d.Stop(15 * time.Second)
			}
			os.RemoveAll(dir)
		}}
		defer func() {
			if err != nil {
				s.Close()
			}
		}()
		for _, name := range []string{"forward", "listen"} {
			d, err := procs.StartDaemon(ctx, procs.Options{Bin: cfg.P2ptun, Home: filepath.Join(dir, name), Listen: listen})
			if err != nil {
				return nil, err
			}
			ds = append(ds, d)
			s.logs = append(s.logs, filepath.Join(d.Home, "daemon.log"))
			s.Daemons = append(s.Daemons, proc{Name: name, PID: d.Cmd.Process.Pid})
		}
		fwd, lis := ds[0], ds[1]
		if _, err := lis.CLI(ctx, "listen", benchProto, target, "--allow", fwd.ID.ID); err != nil {
			return nil, err
		}
		out, err := fwd.CLI(ctx, "forward", benchProto, local, lis.ID.Addresses[0])
		if err != nil {
			return nil, err
		}
		// forward prints /ip4/127.0.0.1/tcp/PORT (or udp).
		parts := strings.Split(strings.TrimSpace(out), "/")
		if len(parts) != 5 {
			return nil, fmt.Errorf("forward printed %q, want /ip4/127.0.0.1/tcp/PORT", out)
		}
		s.Addr = net.JoinHostPort(parts[2], parts[4])
		return s, check(s.Addr)
	}
}

// freePort returns a loopback TCP port that was free a moment ago.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}
