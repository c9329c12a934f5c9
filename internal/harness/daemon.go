package harness

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/p2ptun/p2ptun/internal/logbuf"
)

// RunFunc runs p2ptun's CLI with args until ctx is done, as cli.Run does,
// and returns its exit code. A Spec with one runs the daemon in-process.
type RunFunc func(ctx context.Context, args []string, stdout, stderr io.Writer) int

// Spec says how Start runs a daemon. The zero value runs `p2ptun daemon`
// from the built binary in a fresh HOME on a loopback port.
type Spec struct {
	// Home is an existing HOME (one the test prepared, or a stopped
	// daemon's), or "" for a fresh one from TempHome.
	Home string
	// Command is the daemon's command: "daemon" (default) or "relay".
	Command string
	// ListenAddr is --listen-addr; default /ip4/127.0.0.1/tcp/0.
	ListenAddr string
	// Args are more flags for the command.
	Args []string
	// Env is added to Env() for the binary; Run ignores it.
	Env []string
	// Life bounds the binary's run: it is killed then, whatever the test
	// is doing. Default one minute. Run ignores it.
	Life time.Duration
	// Run runs the daemon in-process instead of the binary.
	Run RunFunc
	// ReadyWithin bounds the wait for the ready file; default 30 s.
	ReadyWithin time.Duration
}

// Ready is the daemon's ready file (--ready-file).
type Ready struct {
	ID, API, Metrics string
	Addresses        []string // each ends in /p2p/ID
}

// Daemon is a running daemon started by Start.
type Daemon struct {
	Spec
	Ready
	ReadyFile string
	// Stdout and Logs are the daemon's output (its log is on stderr).
	Stdout, Logs *logbuf.Buffer
	// Cmd is the binary's process; nil in-process.
	Cmd *exec.Cmd
	// Exited is closed once the daemon has exited; Err and Code are set
	// before.
	Exited <-chan struct{}
	Err    error // the binary's Wait error
	Code   int   // the exit code

	cancel   context.CancelFunc
	stopOnce sync.Once
}

// Start runs a daemon as spec says and waits for its ready file. At
// cleanup a binary is killed if the test has not stopped it; an in-process
// daemon is stopped as SIGTERM would and must exit 0 and clean up.
func Start(t testing.TB, spec Spec) *Daemon {
	t.Helper()
	if spec.Home == "" {
		spec.Home = TempHome(t)
	}
	if spec.Command == "" {
		spec.Command = "daemon"
	}
	if spec.ListenAddr == "" {
		spec.ListenAddr = "/ip4/127.0.0.1/tcp/0"
	}
	if spec.Life == 0 {
		spec.Life = time.Minute
	}
	if spec.ReadyWithin == 0 {
		spec.ReadyWithin = 30 * time.Second
	}
	exited := make(chan struct{})
	d := &Daemon{
		Spec: spec, ReadyFile: filepath.Join(filepath.Dir(spec.Home), "ready.json"),
		Stdout: &logbuf.Buffer{}, Logs: &logbuf.Buffer{}, Exited: exited,
	}
	// A daemon killed before it could remove its ready file left it.
	if err := os.Remove(d.ReadyFile); err != nil && !errors.Is(err, fs.ErrNotExist) {
		t.Fatal(err)
	}
	args := append([]string{"--home", spec.Home, spec.Command, "--listen-addr", spec.ListenAddr, "--ready-file", d.ReadyFile}, spec.Args...)
	if spec.Run != nil {
		d.Stdout = d.Logs // one stream, in the order it was written
		ctx, cancel := context.WithCancel(context.Background())
		d.cancel = cancel
		go func() {
			d.Code = spec.Run(ctx, args, d.Stdout, d.Logs)
			close(exited)
		}()
		t.Cleanup(func() { d.Stop(t) })
	} else {
		bin := Binary(t) // before the daemon's life starts
		ctx, cancel := context.WithTimeout(context.Background(), spec.Life)
		d.cancel = cancel
		d.Cmd = exec.CommandContext(ctx, bin, args...)
		d.Cmd.Env = append(Env(), spec.Env...)
		d.Cmd.Stdout, d.Cmd.Stderr = d.Stdout, d.Logs
		d.Cmd.WaitDelay = 5 * time.Second
		if err := d.Cmd.Start(); err != nil {
			cancel()
			t.Fatal(err)
		}
		go func() {
			d.Err = d.Cmd.Wait()
			d.Code = d.Cmd.ProcessState.ExitCode()
			close(exited)
		}()
		t.Cleanup(func() {
			_ = d.Cmd.Process.Kill()
			<-d.Exited
			cancel()
		})
	}
	d.Ready = WaitReady(t, d.ReadyFile, d.Exited, d.Logs, spec.ReadyWithin)
	if d.ID == "" || d.API == "" {
		t.Fatalf("ready file lacks ID or API: %+v", d.Ready)
	}
	return d
}

// WaitReady waits, at most within, for a daemon's ready file at path and
// returns it; it fails the test with logs if exited closes first.
func WaitReady(t testing.TB, path string, exited <-chan struct{}, logs fmt.Stringer, within time.Duration) Ready {
	t.Helper()
	var doc Ready
	UntilAlive(t, exited, logs, within, "ready file", func() bool {
		b, err := os.ReadFile(path)
		return err == nil && json.Unmarshal(b, &doc) == nil
	})
	return doc
}

// CLI runs a command against the daemon (with --home set to its HOME):
// in-process through Spec.Run, or the binary.
func (d *Daemon) CLI(t testing.TB, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	args = append([]string{"--home", d.Home}, args...)
	if d.Run == nil {
		return Run(t, args...)
	}
	return RunWith(t, d.Run, args...)
}

// RunWith runs a command in-process through run, to completion (at most
// 30 s), and returns its output and exit code.
func RunWith(t testing.TB, run RunFunc, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var o, e bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	code = run(ctx, args, &o, &e)
	return o.String(), e.String(), code
}

// Restart starts the daemon again, as before and in the same HOME, once
// it has exited.
func (d *Daemon) Restart(t testing.TB) *Daemon {
	t.Helper()
	select {
	case <-d.Exited:
	default:
		t.Fatal("restart of a daemon that is still running")
	}
	return Start(t, d.Spec)
}

// Kill sends SIGKILL to the binary and waits for it to be gone.
func (d *Daemon) Kill(t testing.TB) {
	t.Helper()
	if err := d.Cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-d.Exited:
	case <-time.After(15 * time.Second):
		t.Fatalf("daemon still running 15s after SIGKILL")
	}
}

// Signal sends sig to the binary and checks, as WaitExit does, that it
// exits 0 and cleans up.
func (d *Daemon) Signal(t testing.TB, sig syscall.Signal) {
	t.Helper()
	if err := d.Cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
	d.WaitExit(t, sig.String())
}

// Stop shuts the daemon down as SIGTERM does (cancelling an in-process
// one) and checks that it exits 0 and cleans up. It is idempotent, and
// runs at cleanup for an in-process daemon.
func (d *Daemon) Stop(t testing.TB) {
	t.Helper()
	d.stopOnce.Do(func() {
		if d.Cmd == nil {
			d.cancel()
			d.WaitExit(t, "shutdown")
			return
		}
		d.Signal(t, syscall.SIGTERM)
	})
}

// WaitExit checks that the daemon, told to stop (why), exits 0 within
// 15 s and removes its socket and ready file.
func (d *Daemon) WaitExit(t testing.TB, why string) {
	t.Helper()
	select {
	case <-d.Exited:
		if d.Err != nil || d.Code != 0 {
			t.Errorf("daemon exited with %d (%v) after %s, want status 0:\n%s", d.Code, d.Err, why, d.Logs)
		}
	case <-time.After(15 * time.Second):
		t.Fatalf("daemon still running 15s after %s:\n%s", why, d.Logs)
	}
	for _, p := range []string{d.API, d.ReadyFile} {
		if _, err := os.Lstat(p); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s still exists after %s (Lstat: %v)", p, why, err)
		}
	}
}

// Running fails the test if the daemon has exited.
func (d *Daemon) Running(t testing.TB, why string) {
	t.Helper()
	select {
	case <-d.Exited:
		t.Fatalf("%s: the daemon exited (%d, %v):\n%s", why, d.Code, d.Err, d.Logs)
	default:
	}
}

// Until is UntilAlive for this daemon: it fails as soon as the daemon
// exits, with its log.
func (d *Daemon) Until(t testing.TB, within time.Duration, what string, cond func() bool) {
	t.Helper()
	UntilAlive(t, d.Exited, d.Logs, within, what, cond)
}

// Attach returns a Daemon for one the test started some other way (in a
// network namespace, say) on HOME home, writing its log to logs, and
// whose exited is closed once it has exited: to run commands against it
// (CLI, with the binary), poll while it lives (Until) and follow its
// events. Its Stop, Kill, Signal and Restart are not for such a daemon.
func Attach(home string, logs *logbuf.Buffer, exited <-chan struct{}) *Daemon {
	return &Daemon{Spec: Spec{Home: home, Command: "daemon"}, Stdout: logs, Logs: logs, Exited: exited}
}
