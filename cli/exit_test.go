package cli

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/p2ptun/p2ptun/internal/harness"
	"github.com/p2ptun/p2ptun/internal/testnet"
)

// checkOneLineError fails the test unless a failed command printed nothing
// on stdout and exactly one line on stderr, starting with "p2ptun: ".
func checkOneLineError(t *testing.T, out, errOut string) {
	t.Helper()
	if out != "" {
		t.Errorf("stdout %q, want nothing", out)
	}
	if !strings.HasPrefix(errOut, "p2ptun: ") || strings.Count(errOut, "\n") != 1 || !strings.HasSuffix(errOut, "\n") {
		t.Errorf("stderr should be one line starting with \"p2ptun: \", got %q", errOut)
	}
}

// TestExitCodes is the exit-code contract (exit.go, README "Exit codes"):
// real commands, on loopback only, for each code, in order, each failure
// with one line on stderr that says what to do. `p2ptun wait --timeout`'s
// code 9 has its own tests (TestWaitWithoutDaemonTimesOut,
// TestConfigTunnelsSaveBootReloadAndWait); here a daemon that does not
// answer gives it.
func TestExitCodes(t *testing.T) {
	d := startDaemon(t)
	other := startDaemon(t)
	denier := startDaemon(t, "--deny-peer", d.ID) // refuses d's connections
	target := echoTarget(t)
	n := &normalizer{}
	n.add(d.ID, "<PEER>")
	n.add(other.ID, "<OTHER>")
	n.add(denier.ID, "<DENIER>")

	// Homes where something is wrong.
	noDaemon := harness.TempHome(t)
	n.add(noDaemon, "<NO-DAEMON-HOME>")
	badConfig := harness.TempHome(t)
	n.add(badConfig, "<BAD-CONFIG-HOME>")
	if err := os.MkdirAll(badConfig, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(badConfig, "config.toml"), []byte("[network]\nlisten_adrs = []\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	stuck := harness.TempHome(t)
	n.add(stuck, "<STUCK-HOME>")
	if err := os.MkdirAll(stuck, 0o700); err != nil {
		t.Fatal(err)
	}
	testnet.Silent(t, filepath.Join(stuck, "api.sock"))
	notADir := filepath.Join(filepath.Dir(harness.TempHome(t)), "file")
	n.add(notADir, "<FILE>")
	if err := os.WriteFile(notADir, nil, 0o600); err != nil {
		t.Fatal(err)
	}

	// A port that is in use, a peer that nothing listens for, a peer to deny.
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	ghost, foe := harness.NewPeerID(t), harness.NewPeerID(t)
	n.add(ghost, "<GHOST>")
	n.add(foe, "<FOE>")
	deadAddr := fmt.Sprintf("/ip4/127.0.0.1/tcp/%d/p2p/%s", testnet.FreePort(t), ghost)

	cases := []struct {
		name string
		home string // "" for d's
		args []string
		code int
		want string // in stderr: what to do
	}{
		{"listen", "", []string{"listen", "/x/taken", target, "--allow-all"}, ExitOK, ""},
		{"init under a file", filepath.Join(notADir, "home"), []string{"init"}, ExitFailure, "not a directory"},
		{"stray argument", "", []string{"id", "now"}, ExitUsage, "see `p2ptun id --help`"},
		{"no daemon: ls", noDaemon, []string{"ls"}, ExitDaemonNotRunning, "start one with `p2ptun daemon`"},
		{"no daemon: stream ls", noDaemon, []string{"stream", "ls"}, ExitDaemonNotRunning, "start one with `p2ptun daemon`"},
		{"no daemon: listen", noDaemon, []string{"listen", "/x/a", "127.0.0.1:1", "--allow-all"}, ExitDaemonNotRunning, "start one with `p2ptun daemon`"},
		{"no daemon: close", noDaemon, []string{"close", "-a"}, ExitDaemonNotRunning, "start one with `p2ptun daemon`"},
		{"config typo", badConfig, []string{"config", "show"}, ExitConfig, "config.toml:2"},
		{"forward unreachable peer", "", []string{"forward", "/x/web", "127.0.0.1:0", deadAddr}, ExitUnreachable, "is its daemon running?"},
		{"listen again", "", []string{"listen", "/x/taken", target, "--allow-all"}, ExitConflict, "/x/taken"},
		{"forward port in use", "", []string{"forward", "/x/web", busy.Addr().String(), other.Addresses[0]}, ExitConflict, "pick another port"},
		{"close nothing matches", "", []string{"close", "-p", "/x/none"}, ExitNotFound, "see `p2ptun ls`"},
		{"stream close unknown ID", "", []string{"stream", "close", "42"}, ExitNotFound, "see `p2ptun stream ls`"},
		{"deny", "", []string{"access", "deny", foe}, ExitOK, ""},
		{"forward to a denied peer", "", []string{"forward", "/x/web", "127.0.0.1:0", "/p2p/" + foe}, ExitDenied, "access"},
		{"forward to a peer that refuses us", "", []string{"forward", "/x/web", "127.0.0.1:0", denier.Addresses[0]}, ExitDenied, "access allow"},
		{"ping a peer that refuses us", "", []string{"ping", "-n", "1", denier.Addresses[0]}, ExitDenied, "access allow"},
		{"daemon does not answer", stuck, []string{"ls", "--timeout", "100ms"}, ExitTimeout, "did not answer within 100ms"},
	}
	var all strings.Builder
	covered := map[int]bool{}
	for _, tc := range cases {
		covered[tc.code] = true
		t.Run(tc.name, func(t *testing.T) {
			home := tc.home
			if home == "" {
				home = d.Home
			}
			out, errOut, code := run(t, append([]string{"--home", home}, tc.args...)...)
			if code != tc.code {
				t.Errorf("exit code %d, want %d (stderr %q)", code, tc.code, errOut)
			}
			if tc.code == ExitOK {
				if errOut != "" {
					t.Errorf("stderr %q, want nothing", errOut)
				}
				return
			}
			checkOneLineError(t, out, errOut)
			if !strings.Contains(errOut, tc.want) {
				t.Errorf("stderr %q does not say %q", errOut, tc.want)
			}
			fmt.Fprintf(&all, "# %s (exit %d)\n%s", tc.name, code, n.apply(errOut))
		})
	}
	golden(t, "exit-codes.golden", all.String())

	// Every documented code has a row.
	for _, c := range documentedExitCodes(t) {
		if !covered[c] {
			t.Errorf("README documents exit code %d, which no row here produces", c)
		}
	}

	// The failures left nothing behind: only the one listener, and the
	// busy port's owner is untouched.
	if out, _, _ := d.CLI(t, "ls"); strings.Count(out, "\n") != 1 || !strings.Contains(out, "/x/taken") {
		t.Fatalf("listeners after the failures:\n%s", out)
	}
	if _, err := os.Lstat(noDaemon); !os.IsNotExist(err) {
		t.Errorf("commands without a daemon created its home (%v)", err)
	}
}

// documentedExitCodes returns the codes in README.md's "Exit codes" table.
func documentedExitCodes(t *testing.T) []int {
	t.Helper()
	b, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(b), "\n## Exit codes\n")
	if !ok {
		t.Fatal(`README.md has no "## Exit codes" section`)
	}
	section, _, _ = strings.Cut(section, "\n## ")
	var codes []int
	for _, m := range regexp.MustCompile(`(?m)^\| ([0-9]+) \|`).FindAllStringSubmatch(section, -1) {
		c, _ := strconv.Atoi(m[1])
		codes = append(codes, c)
	}
	if !slices.Contains(codes, ExitTimeout) {
		t.Fatalf("README's exit code table lists %v; it has changed shape", codes)
	}
	return codes
}

// TestCommandsGiveUpOnAStuckDaemon: against a daemon that accepts and
// never answers (out of file descriptors, say), every command that asks it
// something exits 9 after --timeout (or P2PTUN_TIMEOUT), with one line,
// instead of hanging; wait keeps its own --timeout.
func TestCommandsGiveUpOnAStuckDaemon(t *testing.T) {
	home := harness.TempHome(t)
	if err := os.MkdirAll(home, 0o700); err != nil {
		t.Fatal(err)
	}
	testnet.Silent(t, filepath.Join(home, "api.sock"))
	peer := harness.NewPeerID(t)
	cases := []struct {
		name string
		env  string // P2PTUN_TIMEOUT
		args []string
		want string
	}{
		{"ls", "", []string{"--timeout", "200ms", "ls"}, "within 200ms"},
		{"flag after the command", "", []string{"stream", "ls", "--timeout", "200ms"}, "within 200ms"},
		{"from the environment", "200ms", []string{"id"}, "within 200ms"},
		{"listen", "", []string{"--timeout", "200ms", "listen", "/x/a", "127.0.0.1:1", "--allow-all"}, "within 200ms"},
		{"access deny", "", []string{"--timeout", "200ms", "access", "deny", peer}, "within 200ms"},
		{"events", "", []string{"--timeout", "200ms", "events"}, "within 200ms"},
		{"pipe", "", []string{"--timeout", "200ms", "pipe", peer, "/x/a"}, "within 200ms"},
		{"top", "", []string{"--timeout", "200ms", "top", "--once"}, "within 200ms"},
		{"wait, its own timeout longer", "", []string{"--timeout", "200ms", "wait", "--timeout", "1s"}, "timed out after 1s: the daemon did not answer within 200ms"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if tc.env != "" {
				t.Setenv("P2PTUN_TIMEOUT", tc.env)
			}
			start := time.Now()
			out, errOut, code := run(t, append([]string{"--home", home}, tc.args...)...)
			if code != ExitTimeout {
				t.Fatalf("exit code %d, want %d (stderr %q)", code, ExitTimeout, errOut)
			}
			checkOneLineError(t, out, errOut)
			if !strings.Contains(errOut, tc.want) {
				t.Errorf("stderr %q does not say %q", errOut, tc.want)
			}
			if took := time.Since(start); took < 200*time.Millisecond {
				t.Errorf("gave up after %s, before the timeout", took)
			}
		})
	}
}
