package harness

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// InitHome runs `p2ptun init` in a fresh HOME, through run (in-process)
// or, when run is nil, the binary, and returns the HOME and its peer ID.
func InitHome(t testing.TB, run RunFunc) (home, id string) {
	t.Helper()
	home = TempHome(t)
	var out, errOut string
	var code int
	if run == nil {
		out, errOut, code = Run(t, "--home", home, "init")
	} else {
		out, errOut, code = RunWith(t, run, "--home", home, "init")
	}
	if code != 0 {
		t.Fatalf("init: exit %d: %s", code, errOut)
	}
	_, id, ok := strings.Cut(strings.TrimSpace(out), "peer ID ")
	if !ok {
		t.Fatalf("init printed no peer ID: %q", out)
	}
	return home, id
}

// WriteConfig replaces HOME/config.toml with text (0600), making HOME
// (0700) if it does not exist yet.
func WriteConfig(t testing.TB, home, text string) {
	t.Helper()
	if err := os.MkdirAll(home, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(home, "config.toml"), []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
}
