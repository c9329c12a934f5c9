package main

import (
	"bufio"
	"context"
	"errors"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/p2ptun/p2ptun/internal/harness"
)

// TestEcho runs the example as its doc comment says: a listener process
// prints its address, a dialer process sends a line from stdin through it
// and prints the echo; the listener then stops cleanly on SIGTERM.
func TestEcho(t *testing.T) {
	bin := harness.Build(t, "./examples/echo")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute) // a bound on a hang, not the oracle
	defer cancel()

	listener := exec.CommandContext(ctx, bin, "-listen", "-allow-all", "-addr", "/ip4/127.0.0.1/tcp/0")
	listener.Env = harness.Env()
	out, err := listener.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var logs strings.Builder
	listener.Stderr = &logs
	if err := listener.Start(); err != nil {
		t.Fatal(err)
	}
	lines := bufio.NewScanner(out)
	var addr string
	for addr == "" && lines.Scan() {
		if l := lines.Text(); strings.HasPrefix(l, "/ip4/127.0.0.1/tcp/") {
			addr = l
		}
	}
	if addr == "" {
		_ = listener.Wait()
		t.Fatalf("the listener printed no loopback address; its log:\n%s", logs.String())
	}

	dialer := exec.CommandContext(ctx, bin, "-dial", addr)
	dialer.Env = harness.Env()
	dialer.Stdin = strings.NewReader("hello through p2pnet\n")
	got, err := dialer.Output()
	if err != nil {
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			t.Fatalf("dialer: %v\n%s", err, exit.Stderr)
		}
		t.Fatalf("dialer: %v", err)
	}
	if string(got) != "hello through p2pnet\n" {
		t.Errorf("dialer printed %q, want the line it sent", got)
	}

	if err := listener.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := listener.Wait(); err != nil {
		t.Errorf("listener after SIGTERM: %v; its log:\n%s", err, logs.String())
	}
}
