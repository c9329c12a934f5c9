//go:build linux

package daemon

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"log/slog"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/p2ptun/p2ptun/config"
	"github.com/p2ptun/p2ptun/internal/logbuf"
	"github.com/p2ptun/p2ptun/internal/notifysock"
	"github.com/p2ptun/p2ptun/internal/testnet"
)

// TestNotifierReload checks the sequence a reload sends for
// Type=notify-reload, over a socket path and an abstract socket name.
func TestNotifierReload(t *testing.T) {
	rnd := make([]byte, 8)
	rand.Read(rnd)
	for name, addr := range map[string]string{
		"path":     filepath.Join(testnet.ShortDir(t), "notify.sock"),
		"abstract": "@p2ptun-test-" + hex.EncodeToString(rnd),
	} {
		t.Run(name, func(t *testing.T) {
			sock := notifysock.Listen(t, addr)
			t.Setenv("NOTIFY_SOCKET", sock.Addr)
			var logs logbuf.Buffer
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
		t.Setenv("NOTIFY_SOCKET", filepath.Join(testnet.ShortDir(t), "none.sock"))
		var logs logbuf.Buffer
		notifier{slog.New(slog.NewTextHandler(&logs, nil))}.stopping()
		if !strings.Contains(logs.String(), "NOTIFY_SOCKET") || !strings.Contains(logs.String(), "STOPPING=1") {
			t.Fatalf("log = %q, want a warning naming NOTIFY_SOCKET and the state", logs.String())
		}
	})
	t.Run("no socket is silent", func(t *testing.T) {
		t.Setenv("NOTIFY_SOCKET", "")
		var logs logbuf.Buffer
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

func TestStatusLineCountsInTheRightNumber(t *testing.T) {
	for _, tc := range []struct {
		addrs, tunnels int
		want           string
	}{
		{1, 1, "serving peer P on 1 address with 1 config tunnel; API S"},
		{2, 0, "serving peer P on 2 addresses with 0 config tunnels; API S"},
	} {
		if got := statusLine("P", tc.addrs, tc.tunnels, "S"); got != tc.want {
			t.Errorf("statusLine(%d, %d) = %q, want %q", tc.addrs, tc.tunnels, got, tc.want)
		}
	}
}

// TestAPIGroupNeedsRestart: the socket's group is set when it is bound, so
// a reload that changes [api] says a restart applies it.
func TestAPIGroupNeedsRestart(t *testing.T) {
	boot, next := config.Default(), config.Default()
	next.API.Group = "p2ptun-ops"
	if got := needsRestart(boot, next); !slices.Equal(got, []string{"api"}) {
		t.Fatalf("needsRestart = %v, want [api]", got)
	}
}
