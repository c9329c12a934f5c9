package cli

import (
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/p2ptun/p2ptun/internal/harness"
)

func TestDaemonLogFormat(t *testing.T) {
	d := startDaemon(t, "--log-format", "json")
	lines := strings.Split(strings.TrimSpace(d.Logs.String()), "\n")
	sawReady := false
	for _, l := range lines {
		var rec map[string]any
		if err := json.Unmarshal([]byte(l), &rec); err != nil {
			t.Fatalf("log line is not JSON (%v): %q", err, l)
		}
		for _, k := range []string{"time", "level", "msg"} {
			if _, ok := rec[k].(string); !ok {
				t.Errorf("log line lacks %q: %q", k, l)
			}
		}
		if rec["msg"] == "daemon ready" && rec["peer"] == d.ID {
			sawReady = true
		}
	}
	if !sawReady {
		t.Fatalf("no \"daemon ready\" record with the peer ID in:\n%s", d.Logs)
	}

	for name, setup := range map[string]func(t *testing.T) []string{
		"flag": func(*testing.T) []string { return []string{"--log-format", "xml"} },
		"env":  func(t *testing.T) []string { t.Setenv("P2PTUN_LOG_FORMAT", "logfmt"); return nil },
	} {
		t.Run("bad "+name, func(t *testing.T) {
			home := harness.TempHome(t)
			args := append([]string{"--home", home, "daemon", "--listen-addr", "/ip4/127.0.0.1/tcp/0"}, setup(t)...)
			out, errOut, code := run(t, args...)
			if code != ExitUsage || out != "" || strings.Count(errOut, "\n") != 1 || !strings.Contains(errOut, "use text or json") {
				t.Fatalf("exit %d, stdout %q, stderr %q; want exit 2 and one line saying text or json", code, out, errOut)
			}
			if _, err := os.Stat(home); !os.IsNotExist(err) {
				t.Fatal("a daemon refused for its flags created its home")
			}
		})
	}
}
