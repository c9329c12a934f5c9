package procs

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// Daemon is one running p2ptun daemon.
type Daemon struct {
	*Running
	Bin, Home string
	// ID is its ready file: its peer ID and swarm addresses.
	ID struct {
		ID        string
		Addresses []string
	}
}

// LimitsTOML is the benchmark daemons' whole config file. It raises the
// limits that the defaults keep low against a hostile peer, so that one
// trusted peer may hold 10,000 tunnels and open them as fast as it can.
// The defaults are unchanged (see config.toml written by `p2ptun init`).
const LimitsTOML = `# Written by p2ptun's benchmark (bench/): limits for one trusted peer
# holding 10,000 tunnels and opening them as fast as it can.
[limits]
connections = 1024
streams = 65536
peer_streams = 65536
listener_streams = 65536
listener_peer_streams = 65536
peer_stream_rate = 1000000.0
peer_stream_burst = 1000000
memory_mib = 16384
peer_memory_mib = 16384
`

// ChildEnv is this process's environment without the P2PTUN_* variables
// (a developer's settings must not change the measurement) and without
// NOTIFY_SOCKET, plus P2PTUN_NO_MDNS=1: nothing announces itself on the
// host's network.
func ChildEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "P2PTUN_") || strings.HasPrefix(kv, "NOTIFY_SOCKET=") {
			continue
		}
		env = append(env, kv)
	}
	return append(env, "P2PTUN_NO_MDNS=1")
}

// Options say how StartDaemon runs a daemon.
type Options struct {
	// Bin is the p2ptun binary; Home the daemon's home, made by
	// `p2ptun init` (with LimitsTOML as its config) unless it exists.
	Bin, Home string
	// Listen is its one swarm address (--listen-addr).
	Listen string
	// Defaults keeps the config.toml `p2ptun init` writes (the limits
	// users get) instead of writing LimitsTOML.
	Defaults bool
	// Start starts the daemon's process; nil: cmd.Start. The WAN
	// benchmark starts it in a network namespace.
	Start func(*exec.Cmd) error
}

// StartDaemon starts a daemon and returns once its ready file is there.
func StartDaemon(ctx context.Context, o Options) (*Daemon, error) {
	d := &Daemon{Bin: o.Bin, Home: o.Home}
	if _, err := os.Stat(filepath.Join(o.Home, "config.toml")); err != nil {
		if _, err := d.CLI(ctx, "init"); err != nil {
			return nil, err
		}
		if !o.Defaults {
			if err := os.WriteFile(filepath.Join(o.Home, "config.toml"), []byte(LimitsTOML), 0o600); err != nil {
				return nil, err
			}
		}
	}
	ready := filepath.Join(o.Home, "ready.json")
	os.Remove(ready) // a restarted daemon's old one
	logf, err := os.Create(filepath.Join(o.Home, "daemon.log"))
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	cmd := exec.Command(o.Bin, "--home", o.Home, "daemon", "--listen-addr", o.Listen,
		"--no-mdns", "--ready-file", ready, "--log-level", "warn")
	cmd.Env = ChildEnv()
	cmd.Stdout, cmd.Stderr = logf, logf
	if d.Running, err = Start(cmd, o.Start); err != nil {
		return nil, err
	}
	err = Poll(ctx, 20*time.Second, func() error {
		if d.Exited() {
			return ErrStop
		}
		b, err := os.ReadFile(ready)
		if err != nil {
			return err
		}
		return json.Unmarshal(b, &d.ID)
	})
	if err == nil && len(d.ID.Addresses) == 0 {
		err = errors.New("the daemon has no address")
	}
	if err != nil {
		d.Stop(5 * time.Second)
		logb, _ := os.ReadFile(filepath.Join(o.Home, "daemon.log"))
		return nil, fmt.Errorf("daemon in %s did not become ready: %v\n%s", o.Home, err, logb)
	}
	return d, nil
}

// CLI runs a p2ptun command against the daemon's home and returns its
// standard output; its error carries the standard error.
func (d *Daemon) CLI(ctx context.Context, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, d.Bin, append([]string{"--home", d.Home}, args...)...)
	cmd.Env = ChildEnv()
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("p2ptun %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}

// Running is a started process that a goroutine waits for.
type Running struct {
	Cmd  *exec.Cmd
	done chan struct{}
}

// Start starts cmd with start (nil: cmd.Start) and waits for it in a
// goroutine of its own.
func Start(cmd *exec.Cmd, start func(*exec.Cmd) error) (*Running, error) {
	if start == nil {
		start = (*exec.Cmd).Start
	}
	if err := start(cmd); err != nil {
		return nil, err
	}
	r := &Running{Cmd: cmd, done: make(chan struct{})}
	go func() { cmd.Wait(); close(r.done) }()
	return r, nil
}

// Exited says whether the process has exited.
func (r *Running) Exited() bool {
	select {
	case <-r.done:
		return true
	default:
		return false
	}
}

// Stop sends SIGTERM, and SIGKILL if the process is still there after
// grace; it returns once the process has exited.
func (r *Running) Stop(grace time.Duration) {
	r.Cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-r.done:
	case <-time.After(grace):
		r.Cmd.Process.Kill()
		<-r.done
	}
}

// ErrStop ends a Poll at once.
var ErrStop = errors.New("the process exited")

// Poll calls f until it returns nil, ErrStop or the timeout passes.
func Poll(ctx context.Context, timeout time.Duration, f func() error) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for {
		err := f()
		if err == nil || errors.Is(err, ErrStop) {
			return err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (last: %v)", ctx.Err(), err)
		case <-t.C:
		}
	}
}
