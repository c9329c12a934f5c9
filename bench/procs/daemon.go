package procs

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
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
named_peer_stream_rate = 1000000.0
named_peer_stream_burst = 1000000
memory_mib = 16384
peer_memory_mib = 16384
`

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
	cmd := exec.Command(o.Bin, "--home", o.Home, "daemon", "--listen-addr", o.Listen,
		"--no-mdns", "--ready-file", ready, "--log-level", "warn")
	cmd.Env = ChildEnv()
	var err error
	d.Running, err = StartReady(ctx, cmd, o.Start, d.LogFile(), 20*time.Second, func() error {
		b, err := os.ReadFile(ready)
		if err != nil {
			return err
		}
		if err := json.Unmarshal(b, &d.ID); err != nil {
			return err
		}
		if len(d.ID.Addresses) == 0 {
			return errors.New("the daemon has no address")
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return d, nil
}

// LogFile is the daemon's log: its standard output and error.
func (d *Daemon) LogFile() string { return filepath.Join(d.Home, "daemon.log") }

// CLI runs a p2ptun command against the daemon's home and returns its
// standard output; its error carries the standard error.
func (d *Daemon) CLI(ctx context.Context, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, d.Bin, append([]string{"--home", d.Home}, args...)...)
	cmd.Env = ChildEnv()
	return Output(cmd)
}
