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
// socat, through a pair of p2ptun daemons, or a pair of kubo daemons. Everything that differs
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
	// NoHalfClose, when set, says why the row cannot carry the reply
	// that follows a client's half-close, which the upload waits for.
	NoHalfClose string
	start       func(ctx context.Context, cfg config, to dest) (*setup, error)
}

// A dest is where a row carries its client's connections: the benchmark's
// own target, or an iperf3 server. Ready tells that a started row's
// address reaches it.
type dest struct {
	Addr  string
	Ready func(addr string) error
}

// targetDest is the benchmark's own target at addr: a row is ready once
// an echo through it comes back.
func targetDest(addr string) dest {
	return dest{Addr: addr, Ready: func(a string) error { return measure.EchoOnce(a, 10*time.Second) }}
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
		{Key: report.Raw, Name: "raw loopback", Color: "#9e9e9e", start: func(context.Context, config, dest) (*setup, error) { return &setup{}, nil }},
		socat,
		{Key: "p2ptun-tcp", Name: "p2ptun TCP", Color: "#4e79a7", start: p2ptunStarter("/ip4/127.0.0.1/tcp/0")},
		{Key: "p2ptun-quic", Name: "p2ptun QUIC", Color: "#59a14f", start: p2ptunStarter("/ip4/127.0.0.1/udp/0/quic-v1")},
		kuboRow(), // kubo.go
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

// startRow starts r toward to and fills in the address to dial for raw
// loopback.
func startRow(ctx context.Context, cfg config, r row, to dest) (*setup, error) {
	s, err := r.start(ctx, cfg, to)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", r.Name, err)
	}
	if s.Addr == "" {
		s.Addr = to.Addr
	}
	return s, nil
}

// startSocat runs socat as a forking TCP forwarder, as its manual shows.
// backlog is raised from socat's 5 to the kernel's usual cap, so that
// opening many connections at once measures socat, not SYN retries.
func startSocat(ctx context.Context, _ config, to dest) (*setup, error) {
	port, err := procs.FreePort()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command("socat",
		fmt.Sprintf("TCP-LISTEN:%d,bind=127.0.0.1,fork,reuseaddr,backlog=4096", port), "TCP:"+to.Addr)
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
	// Ready once a probe connection reaches the destination.
	err = procs.Poll(ctx, 10*time.Second, func() error {
		if r.Exited() {
			return procs.ErrStop
		}
		return to.Ready(s.Addr)
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
// (one transport): B exposes the destination as /x/bench to A only, and A
// forwards a free local port to it. They run as users run them: the
// p2ptun binary, a home made by `p2ptun init`, the CLI for the tunnel.
func p2ptunStarter(listen string) func(context.Context, config, dest) (*setup, error) {
	return p2ptunTunnel(listen, "/ip4/127.0.0.1/tcp/0")
}

// p2ptunTunnel is p2ptunStarter with A's local address local (a TCP or
// UDP port 0).
func p2ptunTunnel(listen, local string) func(context.Context, config, dest) (*setup, error) {
	return func(ctx context.Context, cfg config, to dest) (_ *setup, err error) {
		s, ds, err := daemonPair("p2ptun-bench-", func(home string) (*procs.Daemon, error) {
			return procs.StartDaemon(ctx, procs.Options{Bin: cfg.P2ptun, Home: home, Listen: listen})
		})
		if err != nil {
			return nil, err
		}
		defer func() {
			if err != nil {
				s.Close()
			}
		}()
		fwd, lis := ds[0], ds[1]
		if _, err := lis.CLI(ctx, "listen", benchProto, to.Addr, "--allow", fwd.ID.ID); err != nil {
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
		return s, to.Ready(s.Addr)
	}
}

// A pairDaemon is one of the two daemons of a tunnel row.
type pairDaemon interface {
	Stop(grace time.Duration)
	PID() int
	LogFile() string
}

// daemonPair starts two daemons with start, "forward" and "listen", each
// in a directory of its own under a fresh temporary one. The setup it
// returns stops them and removes the directory; on an error nothing is
// left running.
func daemonPair[D pairDaemon](prefix string, start func(dir string) (D, error)) (*setup, [2]D, error) {
	var ds [2]D
	dir, err := os.MkdirTemp("", prefix)
	if err != nil {
		return nil, ds, err
	}
	started := 0
	s := &setup{stop: func() {
		for _, d := range ds[:started] {
			d.Stop(15 * time.Second)
		}
		os.RemoveAll(dir)
	}}
	for i, name := range []string{"forward", "listen"} {
		d, err := start(filepath.Join(dir, name))
		if err != nil {
			s.Close()
			return nil, ds, err
		}
		ds[i], started = d, started+1
		s.logs = append(s.logs, d.LogFile())
		s.Daemons = append(s.Daemons, proc{Name: name, PID: d.PID()})
	}
	return s, ds, nil
}
