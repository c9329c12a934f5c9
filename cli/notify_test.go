package cli

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

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
