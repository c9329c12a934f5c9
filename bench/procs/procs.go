package procs

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

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

// StartReady starts cmd with its output in the file logPath and polls
// ready until it returns nil (or ErrStop), within timeout. A process that
// is not ready then is stopped, and the error has its log. Its
// start is as for Start.
func StartReady(ctx context.Context, cmd *exec.Cmd, start func(*exec.Cmd) error, logPath string, timeout time.Duration, ready func() error) (*Running, error) {
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	cmd.Stdout, cmd.Stderr = logf, logf
	r, err := Start(cmd, start)
	if err != nil {
		return nil, err
	}
	err = Poll(ctx, timeout, func() error {
		if r.Exited() {
			return ErrStop
		}
		return ready()
	})
	if err != nil {
		r.Stop(5 * time.Second)
		logb, _ := os.ReadFile(logPath)
		return nil, fmt.Errorf("%s in %s did not become ready: %w\n%s", filepath.Base(cmd.Path), filepath.Dir(logPath), err, logb)
	}
	return r, nil
}

// Output runs cmd and returns its stdout; its error names the command
// and says what it wrote on stderr.
func Output(cmd *exec.Cmd) (string, error) {
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("%s %s: %v: %s", filepath.Base(cmd.Path), strings.Join(cmd.Args[1:], " "), err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}

// Running is a started process that a goroutine waits for.
type Running struct {
	cmd  *exec.Cmd
	done chan struct{}
}

// Start starts cmd with start (nil: cmd.Start; the WAN benchmark starts
// processes in a network namespace) and a goroutine that waits for it.
func Start(cmd *exec.Cmd, start func(*exec.Cmd) error) (*Running, error) {
	if start == nil {
		start = (*exec.Cmd).Start
	}
	if err := start(cmd); err != nil {
		return nil, err
	}
	r := &Running{cmd: cmd, done: make(chan struct{})}
	go func() { cmd.Wait(); close(r.done) }()
	return r, nil
}

// PID is the process's ID.
func (r *Running) PID() int { return r.cmd.Process.Pid }

// Exited is whether the process has exited.
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
	r.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-r.done:
	case <-time.After(grace):
		r.cmd.Process.Kill()
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

// FreePort returns a loopback TCP port that was free a moment ago.
func FreePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}
