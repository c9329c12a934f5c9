package cli

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/p2ptun/p2ptun/internal/harness"
	"github.com/p2ptun/p2ptun/internal/notifysock"
)

// TestDaemonNotifiesSystemd runs the daemon as systemd would with
// Type=notify: READY=1 must come only once the API answers, and STOPPING=1
// as soon as shutdown begins.
func TestDaemonNotifiesSystemd(t *testing.T) {
	home := harness.TempHome(t)
	sock := notifysock.Listen(t, filepath.Join(filepath.Dir(home), "notify.sock"))
	t.Setenv("NOTIFY_SOCKET", sock.Addr)

	logs := &syncBuf{}
	ctx, cancel := context.WithCancel(context.Background())
	exited := make(chan struct{})
	var code int
	go func() {
		defer close(exited)
		code = Run(ctx, []string{"--home", home, "daemon", "--listen-addr", "/ip4/127.0.0.1/tcp/0"}, logs, logs)
	}()
	t.Cleanup(func() { cancel(); <-exited })

	ready := sock.Next(t, exited)
	if ready["READY"] != "1" || ready["MAINPID"] != strconv.Itoa(os.Getpid()) || !strings.HasPrefix(ready["STATUS"], "serving peer 12D3KooW") {
		t.Fatalf("first notification = %q, want READY=1 with MAINPID and STATUS", ready)
	}
	// The API already answers: `ls` exits 3 when no daemon does.
	if out, errOut, code := run(t, "--home", home, "ls"); code != 0 || out != "" {
		t.Fatalf("ls right after READY=1: exit %d, %q %q", code, out, errOut)
	}

	cancel()
	stopping := sock.Next(t, exited)
	if stopping["STOPPING"] != "1" {
		t.Fatalf("notification after cancel = %q, want STOPPING=1", stopping)
	}
	<-exited
	if code != 0 {
		t.Fatalf("daemon exited %d:\n%s", code, logs)
	}
	if strings.Contains(logs.String(), "NOTIFY_SOCKET") {
		t.Fatalf("the daemon logged a failed notification:\n%s", logs)
	}
}

// TestNotifierReload checks the sequence a reload sends for
// Type=notify-reload, over a socket path and an abstract socket name.
func TestNotifierReload(t *testing.T) {
	rnd := make([]byte, 8)
	rand.Read(rnd)
	for name, addr := range map[string]string{
		"path":     filepath.Join(filepath.Dir(harness.TempHome(t)), "notify.sock"),
		"abstract": "@p2ptun-test-" + hex.EncodeToString(rnd),
	} {
		t.Run(name, func(t *testing.T) {
			sock := notifysock.Listen(t, addr)
			t.Setenv("NOTIFY_SOCKET", sock.Addr)
			var logs syncBuf
			n := notifier{slog.New(slog.NewTextHandler(&logs, nil))}

			before := monotonicUsec(t)
			err := n.reload(func() error {
				m := sock.Next(t, nil)
				after := monotonicUsec(t)
				usec, perr := strconv.ParseInt(m["MONOTONIC_USEC"], 10, 64)
				if m["RELOADING"] != "1" || perr != nil || usec < before || usec > after {
					t.Errorf("before the reload ran: %q, want RELOADING=1 and MONOTONIC_USEC in [%d, %d]", m, before, after)
				}
				return nil
			}, func() string { return "serving" })
			if err != nil {
				t.Fatal(err)
			}
			if m := sock.Next(t, nil); m["READY"] != "1" || m["STATUS"] != "serving" {
				t.Fatalf("after the reload: %q, want READY=1 STATUS=serving", m)
			}

			// A failed reload still ends with READY=1: the daemon runs on.
			boom := errors.New("bad config")
			err = n.reload(func() error { sock.Next(t, nil); return boom }, func() string { return "serving" })
			if !errors.Is(err, boom) {
				t.Fatalf("reload returned %v, want %v", err, boom)
			}
			if m := sock.Next(t, nil); m["READY"] != "1" || m["STATUS"] != "reload failed (bad config); serving" {
				t.Fatalf("after a failed reload: %q, want READY=1 and the error in STATUS", m)
			}
			if logs.String() != "" {
				t.Fatalf("logged: %s", logs.String())
			}
		})
	}

	t.Run("unreachable socket is logged", func(t *testing.T) {
		t.Setenv("NOTIFY_SOCKET", filepath.Join(filepath.Dir(harness.TempHome(t)), "none.sock"))
		var logs syncBuf
		notifier{slog.New(slog.NewTextHandler(&logs, nil))}.stopping()
		if !strings.Contains(logs.String(), "NOTIFY_SOCKET") || !strings.Contains(logs.String(), "STOPPING=1") {
			t.Fatalf("log = %q, want a warning naming NOTIFY_SOCKET and the state", logs.String())
		}
	})
	t.Run("no socket is silent", func(t *testing.T) {
		t.Setenv("NOTIFY_SOCKET", "")
		var logs syncBuf
		notifier{slog.New(slog.NewTextHandler(&logs, nil))}.ready("x")
		if logs.String() != "" {
			t.Fatalf("log = %q, want nothing", logs.String())
		}
	})
}

func monotonicUsec(t *testing.T) int64 {
	t.Helper()
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		t.Fatal(err)
	}
	return ts.Nano() / 1000
}
