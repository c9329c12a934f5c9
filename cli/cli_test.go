package cli

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	ucli "github.com/urfave/cli/v2"
	"go.uber.org/goleak"

	"github.com/p2ptun/p2ptun/internal/harness"
	"github.com/p2ptun/p2ptun/internal/logbuf"
	"github.com/p2ptun/p2ptun/internal/testnet"
)

var update = flag.Bool("update", false, "rewrite the golden files in ../testdata/golden")

func TestMain(m *testing.M) {
	// Test daemons never announce themselves on the host's network (mDNS
	// multicasts on every interface): they stay on loopback.
	os.Setenv("P2PTUN_NO_MDNS", "1")
	// Nor do they report to a service manager the tests may run under.
	os.Unsetenv("NOTIFY_SOCKET")
	goleak.VerifyTestMain(m)
}

// syncBuf is a goroutine-safe buffer for a process's output.
type syncBuf = logbuf.Buffer

// run runs the CLI in-process.
func run(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	return harness.RunWith(t, Run, args...)
}

// startDaemon runs `p2ptun daemon` in-process on loopback and waits for its
// ready file. At cleanup it stops it the way SIGTERM does and checks that it
// exits 0 and removes its socket and ready file.
func startDaemon(t *testing.T, extra ...string) *harness.Daemon {
	t.Helper()
	return startCommand(t, "daemon", extra...)
}

// startCommand is startDaemon for `daemon` or `relay`.
func startCommand(t *testing.T, command string, extra ...string) *harness.Daemon {
	t.Helper()
	return startIn(t, harness.TempHome(t), command, extra...)
}

// startIn is startCommand with a given home, which may hold a config.
func startIn(t *testing.T, home, command string, extra ...string) *harness.Daemon {
	t.Helper()
	return harness.Start(t, harness.Spec{Home: home, Command: command, Args: extra, Run: Run, ReadyWithin: 20 * time.Second})
}

// normalizer replaces what changes from run to run with stable names.
type normalizer struct{ pairs []string }

func (n *normalizer) add(old, new string) { n.pairs = append(n.pairs, old, new) }

var (
	portRE     = regexp.MustCompile(`/tcp/[0-9]+`)
	hostPortRE = regexp.MustCompile(`127\.0\.0\.1:[0-9]+`)
	openedRE   = regexp.MustCompile(`"OpenedAt": "[^"]+"`)
	rttRE      = regexp.MustCompile(`"RTTMillis": [0-9.]+|\b[0-9]+\.[0-9]+ms\b`)
)

func (n *normalizer) apply(s string) string {
	s = strings.NewReplacer(n.pairs...).Replace(s)
	s = portRE.ReplaceAllString(s, "/tcp/<PORT>")
	s = hostPortRE.ReplaceAllString(s, "127.0.0.1:<PORT>")
	s = openedRE.ReplaceAllString(s, `"OpenedAt": "<TIME>"`)
	return rttRE.ReplaceAllStringFunc(s, func(m string) string {
		if strings.HasPrefix(m, `"RTTMillis"`) {
			return `"RTTMillis": <RTT>`
		}
		return "<RTT>"
	})
}

// golden compares got with testdata/golden/name, or rewrites it with -update.
func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("..", "testdata", "golden", name)
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run `go test ./cli -update` to create it)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs from golden file:\n--- got ---\n%s--- want ---\n%s", name, got, want)
	}
}

func echoTarget(t *testing.T) string { return testnet.Serve(t, testnet.Echo) }

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	harness.Until(t, 10*time.Second, what, cond)
}

func TestTunnelListingsAndClose(t *testing.T) {
	a, b := startDaemon(t), startDaemon(t)
	n := &normalizer{}
	n.add(a.ID, "<PEER-A>")
	n.add(b.ID, "<PEER-B>")
	target := echoTarget(t)

	out, errOut, code := b.CLI(t, "listen", "/x/echo", target, "--allow", a.ID)
	if code != 0 || !strings.HasPrefix(out, "listening: /x/echo → ") {
		t.Fatalf("listen: code %d, out %q, err %q", code, out, errOut)
	}
	out, errOut, code = a.CLI(t, "forward", "/x/echo", "/ip4/127.0.0.1/tcp/0", b.Addresses[0])
	if code != 0 {
		t.Fatalf("forward: code %d: %s", code, errOut)
	}
	if strings.HasSuffix(strings.TrimSpace(out), "/tcp/0") {
		t.Fatalf("forward printed %q, want the real port", out)
	}
	fwd := harness.HostPort(t, out)

	// One live connection with 4 bytes each way.
	c, err := net.Dial("tcp", fwd)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Write([]byte("ping"))
	if _, err := io.ReadFull(c, make([]byte, 4)); err != nil {
		t.Fatal(err)
	}
	// Counters move just after each write returns, so wait for both ends.
	counted := func(d *harness.Daemon) bool {
		out, _, _ := d.CLI(t, "stream", "ls", "--json")
		var l struct {
			Streams []struct{ BytesIn, BytesOut int64 }
		}
		return json.Unmarshal([]byte(out), &l) == nil && len(l.Streams) == 1 && l.Streams[0].BytesIn == 4 && l.Streams[0].BytesOut == 4
	}
	waitUntil(t, "stream counters", func() bool { return counted(a) && counted(b) })
	// A ping records each side's RTT to the other, so the listings show one.
	for _, p := range []struct {
		from *harness.Daemon
		to   string
	}{{a, b.Addresses[0]}, {b, a.Addresses[0]}} {
		out, errOut, code := p.from.CLI(t, "ping", "-n", "2", p.to)
		if code != 0 || !strings.Contains(out, "2: rtt=") || !strings.Contains(out, "path=direct") {
			t.Fatalf("ping: %d %q %q", code, out, errOut)
		}
	}

	var all strings.Builder
	for _, step := range []struct {
		d    *harness.Daemon
		args []string
	}{
		{a, []string{"ls", "--headers"}},
		{a, []string{"ls", "--json"}},
		{b, []string{"ls", "--headers"}},
		{b, []string{"--json", "ls"}},
		{a, []string{"stream", "ls", "--headers"}},
		{a, []string{"stream", "ls", "--json"}},
		{b, []string{"stream", "ls", "-v"}},
	} {
		out, errOut, code := step.d.CLI(t, step.args...)
		if code != 0 {
			t.Fatalf("%v: code %d: %s", step.args, code, errOut)
		}
		name := "a"
		if step.d == b {
			name = "b"
		}
		fmt.Fprintf(&all, "$ p2ptun %s  # on %s\n%s", strings.Join(step.args, " "), name, n.apply(out))
	}
	golden(t, "listings.golden", all.String())

	// stream close ends the client's connection with a reset.
	out, errOut, code = a.CLI(t, "stream", "close", "1")
	if code != 0 || out != "closed 1 stream\n" {
		t.Fatalf("stream close: code %d, out %q, err %q", code, out, errOut)
	}
	if _, err := io.ReadAll(c); !harness.IsReset(err) {
		t.Fatalf("client after stream close: err = %v, want a reset", err)
	}
	if out, _, code = a.CLI(t, "stream", "ls"); code != 0 || out != "" {
		t.Fatalf("stream ls after close: %q", out)
	}

	// close -p ends the forward and frees its port.
	out, errOut, code = a.CLI(t, "close", "-p", "/x/echo")
	if code != 0 || out != "closed 1 tunnel\n" {
		t.Fatalf("close: code %d, out %q, err %q", code, out, errOut)
	}
	if c, err := net.Dial("tcp", fwd); err == nil {
		c.Close()
		t.Fatal("forward port still accepts after close")
	}
	out, _, _ = a.CLI(t, "ls", "--json")
	if strings.TrimSpace(out) != "{\n  \"Listeners\": []\n}" {
		t.Fatalf("ls after close = %s", out)
	}
	out, _, code = b.CLI(t, "close", "-a", "--json")
	if code != 0 || !strings.Contains(out, `"Closed": 1`) {
		t.Fatalf("close -a --json: code %d, %q", code, out)
	}
}

func TestBadInputFailsCleanly(t *testing.T) {
	d := startDaemon(t)
	n := &normalizer{}
	n.add(d.ID, "<PEER>")
	n.add(d.Home, "<HOME>")
	target := echoTarget(t)
	other := harness.NewPeerID(t)
	n.add(other, "<OTHER>")

	cases := []struct {
		name string
		args []string
		code int
	}{
		{"unknown command", []string{"frobnicate"}, ExitUsage},
		{"unknown flag", []string{"ls", "--nope"}, ExitUsage},
		{"missing arguments", []string{"listen", "/x/web"}, ExitUsage},
		{"protocol outside /x/", []string{"listen", "/web", target, "--allow-all"}, ExitUsage},
		{"reserved protocol", []string{"listen", "/ipfs/ping/1.0.0", target, "--allow-all", "--allow-custom-protocol"}, ExitUsage},
		{"malformed target multiaddr", []string{"listen", "/x/web", "/ip4/999.1.1.1/tcp/80", "--allow-all"}, ExitUsage},
		{"target without port", []string{"listen", "/x/web", "localhost", "--allow-all"}, ExitUsage},
		{"bad allowed peer ID", []string{"listen", "/x/web", target, "--allow", "not-a-peer"}, ExitUsage},
		{"no allowlist", []string{"listen", "/x/web", target}, ExitUsage},
		{"forward bad listen address", []string{"forward", "/x/web", "/dns/localhost/tcp/0", "/p2p/" + other}, ExitUsage},
		{"forward bad peer ID", []string{"forward", "/x/web", "127.0.0.1:0", "/p2p/QmNope"}, ExitUsage},
		{"forward peer address without /p2p", []string{"forward", "/x/web", "127.0.0.1:0", "/ip4/127.0.0.1/tcp/1"}, ExitUsage},
		{"forward to self", []string{"forward", "/x/web", "127.0.0.1:0", d.ID}, ExitUsage},
		{"close without selector", []string{"close"}, ExitUsage},
		{"close two selectors", []string{"close", "-a", "-p", "/x/web"}, ExitUsage},
		{"stream close bad ID", []string{"stream", "close", "abc"}, ExitUsage},
		{"stream close nothing", []string{"stream", "close"}, ExitUsage},
		{"access deny own ID", []string{"access", "deny", d.ID}, ExitUsage},
		{"access allow own ID", []string{"access", "allow", d.ID}, ExitUsage},
		{"forward several peers, one twice", []string{"forward", "/x/web", "127.0.0.1:0", "/p2p/" + other, other}, ExitUsage},
		{"forward unknown balance", []string{"forward", "/x/web", "127.0.0.1:0", other, harness.NewPeerID(t), "--balance", "fastest"}, ExitUsage},
		{"forward balance with one peer", []string{"forward", "/x/web", "127.0.0.1:0", other, "--balance", "rtt"}, ExitUsage},
		{"forward several peers, one is self", []string{"forward", "/x/web", "127.0.0.1:0", other, d.ID, "--lazy"}, ExitUsage},
	}
	var all strings.Builder
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			out, errOut, code := d.CLI(t, tc.args...)
			if code != tc.code {
				t.Errorf("exit code %d, want %d (stderr %q)", code, tc.code, errOut)
			}
			checkOneLineError(t, out, errOut)
			fmt.Fprintf(&all, "# %s (exit %d)\n%s", tc.name, code, n.apply(errOut))
		})
	}
	golden(t, "errors.golden", all.String())

	// Nothing was half-registered.
	if out, _, _ := d.CLI(t, "ls"); out != "" {
		t.Fatalf("listeners left behind by failed commands:\n%s", out)
	}
	if out, _, _ := d.CLI(t, "access", "ls"); out != "allow: any peer (no allow list)\ndeny:  none\n" {
		t.Fatalf("access policy changed by failed commands:\n%s", out)
	}
	// The daemon still works.
	if _, errOut, code := d.CLI(t, "listen", "/x/web", target, "--allow-all"); code != 0 {
		t.Fatalf("listen after failures: %s", errOut)
	}
}

func TestInitAndUnsafeFiles(t *testing.T) {
	home := harness.TempHome(t)
	out, errOut, code := run(t, "--home", home, "init")
	if code != 0 || !strings.Contains(out, "peer ID 12D3KooW") {
		t.Fatalf("init: %d %q %q", code, out, errOut)
	}
	for path, mode := range map[string]os.FileMode{home: 0o700, filepath.Join(home, "identity.key"): 0o600, filepath.Join(home, "config.toml"): 0o600} {
		st, err := os.Stat(path)
		if err != nil || st.Mode().Perm() != mode {
			t.Errorf("%s: mode %v, err %v; want %04o", path, st.Mode().Perm(), err, mode)
		}
	}
	key, _ := os.ReadFile(filepath.Join(home, "identity.key"))
	_, errOut, code = run(t, "--home", home, "init")
	if code != ExitConflict || !strings.Contains(errOut, "never overwritten") {
		t.Fatalf("second init: %d %q", code, errOut)
	}
	if again, _ := os.ReadFile(filepath.Join(home, "identity.key")); !bytes.Equal(again, key) {
		t.Fatal("second init changed the identity key")
	}
	out, _, code = run(t, "--home", home, "id", "--json")
	if code != 0 || !strings.Contains(out, `"Addresses": []`) {
		t.Fatalf("offline id: %d %q", code, out)
	}

	os.Chmod(home, 0o755)
	_, errOut, code = run(t, "--home", home, "daemon", "--listen-addr", "/ip4/127.0.0.1/tcp/0")
	if code != ExitConfig || !strings.Contains(errOut, "chmod 700") {
		t.Fatalf("home readable by others: %d %q", code, errOut)
	}
	os.Chmod(home, 0o700)

	keyPath := filepath.Join(home, "identity.key")
	os.Chmod(keyPath, 0o644)
	_, errOut, code = run(t, "--home", home, "daemon", "--listen-addr", "/ip4/127.0.0.1/tcp/0")
	if code != ExitConfig || !strings.Contains(errOut, "chmod 600") {
		t.Fatalf("world-readable key: %d %q", code, errOut)
	}
	os.Chmod(keyPath, 0o600)
	os.WriteFile(keyPath, []byte("garbage"), 0o600)
	_, errOut, code = run(t, "--home", home, "daemon", "--listen-addr", "/ip4/127.0.0.1/tcp/0")
	if code != ExitConfig || !strings.Contains(errOut, "corrupt") {
		t.Fatalf("corrupt key: %d %q", code, errOut)
	}
	os.WriteFile(filepath.Join(home, "config.toml"), []byte("[network]\nlisten_adrs = []\n"), 0o600)
	_, errOut, code = run(t, "--home", home, "daemon")
	if code != ExitConfig || !strings.Contains(errOut, "config.toml:2") || !strings.Contains(errOut, "listen_adrs") {
		t.Fatalf("config typo: %d %q", code, errOut)
	}
	if _, err := os.Lstat(filepath.Join(home, "api.sock")); !os.IsNotExist(err) {
		t.Fatal("a failed daemon start left its API socket behind")
	}
}

func TestDaemonRefusesSecondInstanceAndIDWorks(t *testing.T) {
	d := startDaemon(t)
	_, errOut, code := d.CLI(t, "daemon", "--listen-addr", "/ip4/127.0.0.1/tcp/0")
	if code != ExitConflict || !strings.Contains(errOut, "already running") {
		t.Fatalf("second daemon: %d %q", code, errOut)
	}
	st, err := os.Stat(d.API)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("api socket mode %v (%v), want 0600", st.Mode().Perm(), err)
	}
	out, _, code := d.CLI(t, "id")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if code != 0 || lines[0] != d.ID || len(lines) < 2 || !strings.HasSuffix(lines[1], "/p2p/"+d.ID) {
		t.Fatalf("id = %q", out)
	}
	out, _, _ = d.CLI(t, "id", "--json")
	var id struct {
		ID        string
		Addresses []string
	}
	if err := json.Unmarshal([]byte(out), &id); err != nil || id.ID != d.ID || len(id.Addresses) == 0 {
		t.Fatalf("id --json = %q (%v)", out, err)
	}
}

// TestDaemonLocksItsHome: a second daemon on the same home is refused by
// the home's lock, even once the first one's API socket is gone (deleted
// by a cleanup script, say); and the lock goes with the daemon.
func TestDaemonLocksItsHome(t *testing.T) {
	d := startDaemon(t)
	if err := os.Remove(d.API); err != nil {
		t.Fatal(err)
	}
	out, errOut, code := d.CLI(t, "daemon", "--listen-addr", "/ip4/127.0.0.1/tcp/0")
	if code != ExitConflict {
		t.Fatalf("second daemon on the home: exit %d, want %d (stderr %q)", code, ExitConflict, errOut)
	}
	checkOneLineError(t, out, errOut)
	if want := fmt.Sprintf("pid %d", os.Getpid()); !strings.Contains(errOut, want) {
		t.Errorf("stderr %q does not name the holder, %s", errOut, want)
	}
	if _, err := os.Lstat(d.API); !os.IsNotExist(err) {
		t.Errorf("the refused daemon left an API socket (%v)", err)
	}
	d.Stop(t)
	startIn(t, d.Home, "daemon").Stop(t)
}

func TestEphemeralDaemonWritesNoIdentity(t *testing.T) {
	d := startDaemon(t, "--ephemeral")
	if _, err := os.Stat(filepath.Join(d.Home, "identity.key")); !os.IsNotExist(err) {
		t.Fatal("--ephemeral wrote an identity key")
	}
	if out, _, code := d.CLI(t, "ls"); code != 0 || out != "" {
		t.Fatalf("ls on an ephemeral daemon: %d %q", code, out)
	}
}

func TestGlobalFlagsAfterTheCommand(t *testing.T) {
	d := startDaemon(t)
	out, errOut, code := run(t, "id", "--home", d.Home)
	if code != 0 || !strings.HasPrefix(out, d.ID+"\n") {
		t.Fatalf("id --home: %d %q %q", code, out, errOut)
	}
	if _, errOut, code := run(t, "stream", "ls", "--api", d.API); code != 0 {
		t.Fatalf("stream ls --api: %d %q", code, errOut)
	}
}

func TestVersion(t *testing.T) {
	out, _, code := run(t, "version")
	if code != 0 || !strings.HasPrefix(out, "p2ptun "+version()+" (go-libp2p ") {
		t.Fatalf("version = %d %q", code, out)
	}
	// --version is the same command.
	for _, args := range [][]string{{"--version"}, {"-v"}, {"--version", "--json"}} {
		want, _, _ := run(t, append([]string{"version"}, args[1:]...)...)
		got, errOut, code := run(t, args...)
		if code != 0 || got != want || errOut != "" {
			t.Errorf("%s: exit %d, stdout %q, stderr %q; want 0 and %q", strings.Join(args, " "), code, got, errOut, want)
		}
	}
}

// TestBadGlobalInputIsOneLine: input that no daemon is needed to judge
// fails before anything is read, created or dialled, with one line, and
// the documented code.
func TestBadGlobalInputIsOneLine(t *testing.T) {
	file := filepath.Join(filepath.Dir(harness.TempHome(t)), "file")
	if err := os.WriteFile(file, []byte("not a home"), 0o600); err != nil {
		t.Fatal(err)
	}
	home := harness.TempHome(t)
	cases := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"home is a file: ls", []string{"--home", file, "ls"}, ExitConfig, "not a directory"},
		{"home is a file: init", []string{"--home", file, "init"}, ExitConfig, "not a directory"},
		{"home is a file: daemon", []string{"--home", file, "daemon", "--listen-addr", "/ip4/127.0.0.1/tcp/0"}, ExitConfig, "not a directory"},
		{"home is a file: config show", []string{"--home", file, "config", "show"}, ExitConfig, "not a directory"},
		{"empty home: ls", []string{"--home", "", "ls"}, ExitUsage, "--home (or P2PTUN_HOME) is empty"},
		{"empty home: init", []string{"--home", "", "init"}, ExitUsage, "--home (or P2PTUN_HOME) is empty"},
		{"empty home: id", []string{"--home=", "id"}, ExitUsage, "--home (or P2PTUN_HOME) is empty"},
		{"empty home: daemon", []string{"--home", "", "daemon", "--listen-addr", "/ip4/127.0.0.1/tcp/0"}, ExitUsage, "--home (or P2PTUN_HOME) is empty"},
		{"empty home: config show", []string{"--home", "", "config", "show"}, ExitUsage, "--home (or P2PTUN_HOME) is empty"},
		{"top -n 0", []string{"--home", home, "top", "-n", "0"}, ExitUsage, "--iterations 0: use a positive count"},
		{"top --iterations=0", []string{"--home", home, "top", "--iterations=0"}, ExitUsage, "--iterations 0: use a positive count"},
		{"--version with a command", []string{"--version", "ls"}, ExitUsage, "--version takes no command"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			out, errOut, code := run(t, tc.args...)
			if code != tc.code {
				t.Errorf("exit code %d, want %d (stderr %q)", code, tc.code, errOut)
			}
			checkOneLineError(t, out, errOut)
			if !strings.Contains(errOut, tc.want) {
				t.Errorf("stderr %q does not say %q", errOut, tc.want)
			}
		})
	}
	if b, err := os.ReadFile(file); err != nil || string(b) != "not a home" {
		t.Errorf("the file given as --home changed: %q, %v", b, err)
	}
	if _, err := os.Lstat(home); !os.IsNotExist(err) {
		t.Errorf("top -n 0 created its home (%v)", err)
	}
}

func TestPermute(t *testing.T) {
	app := newApp(io.Discard, io.Discard)
	for _, tc := range []struct{ in, want string }{
		{"listen /x/web 127.0.0.1:80 --allow P --allow Q", "listen --allow P --allow Q /x/web 127.0.0.1:80"},
		{"--home H listen /x/web T --allow-all -r", "--home H listen --allow-all -r /x/web T"},
		{"stream close 3 --json", "stream close --json 3"},
		{"forward /x/a L P --lazy", "forward --lazy /x/a L P"},
		{"close -p /x/a", "close -p /x/a"},
		{"listen /x/a -- --allow", "listen /x/a -- --allow"},
		{"ls --home H --headers", "--home H ls --headers"},
		{"stream ls --api=S -v", "--api=S stream ls -v"},
		{"ls --json --home H", "--home H ls --json"},
	} {
		got := strings.Join(permute(app, strings.Fields(tc.in)), " ")
		if got != tc.want {
			t.Errorf("permute(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// TestUnknownSubcommandIsAUsageError runs a mistyped subcommand under every
// command that has subcommands, found by walking the app's command tree so
// that a new parent cannot be forgotten: each is a usage error (exit 2) in
// one line that names the valid subcommands, never urfave's help and exit 0.
func TestUnknownSubcommandIsAUsageError(t *testing.T) {
	home := harness.TempHome(t)
	var walk func(path []string, cmds []*ucli.Command) int
	walk = func(path []string, cmds []*ucli.Command) int {
		parents := 0
		for _, c := range cmds {
			p := append(slices.Clone(path), c.Name)
			if len(c.Subcommands) == 0 {
				continue
			}
			parents++
			t.Run(strings.Join(p, " "), func(t *testing.T) {
				out, errOut, code := run(t, append([]string{"--home", home}, append(p, "frob", "PEER")...)...)
				if code != ExitUsage {
					t.Errorf("exit code %d, want %d (stdout %q, stderr %q)", code, ExitUsage, out, errOut)
				}
				checkOneLineError(t, out, errOut)
				if !strings.Contains(errOut, `"`+strings.Join(p, " ")+` frob"`) {
					t.Errorf("stderr %q does not name the unknown subcommand", errOut)
				}
				for _, s := range c.Subcommands {
					if !strings.Contains(errOut, s.Name) {
						t.Errorf("stderr %q does not list the subcommand %s", errOut, s.Name)
					}
				}
				// Without a subcommand, the parent prints its help.
				out, errOut, code = run(t, append([]string{"--home", home}, p...)...)
				if code != ExitOK || !strings.Contains(out, "COMMANDS:") || errOut != "" {
					t.Errorf("bare %s: exit %d, stdout %q, stderr %q; want its help and 0", strings.Join(p, " "), code, out, errOut)
				}
			})
			parents += walk(p, c.Subcommands)
		}
		return parents
	}
	if n := walk(nil, newApp(io.Discard, io.Discard).Commands); n < 3 {
		t.Fatalf("found %d commands with subcommands; want at least access, config and stream", n)
	}
}
