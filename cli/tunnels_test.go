package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/p2ptun/p2ptun/api"
	"github.com/p2ptun/p2ptun/config"
	"github.com/p2ptun/p2ptun/config/homedir"
	"github.com/p2ptun/p2ptun/internal/harness"
	"github.com/p2ptun/p2ptun/internal/testnet"
)

// initHome runs `p2ptun init` in a fresh home and returns it with the
// new peer ID.
func initHome(t *testing.T) (home, id string) {
	t.Helper()
	return harness.InitHome(t, Run)
}

// appendConfig adds text to the home's config.toml.
func appendConfig(t *testing.T, home, text string) {
	t.Helper()
	path := filepath.Join(home, "config.toml")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, append(b, text...), 0o600); err != nil {
		t.Fatal(err)
	}
}

func forwardTable(name, listen, peer string) string {
	return fmt.Sprintf("\n[[forward]]\nname = %q\nprotocol = \"/x/echo\"\nlisten = %q\npeer = %q\n", name, listen, peer)
}

// lsJSON is d's `ls --json`.
func lsJSON(t *testing.T, d *harness.Daemon) []api.Listener {
	t.Helper()
	return jsonOut[api.ListenerList](t, d, "ls", "--json").Listeners
}

// named returns the local host:port of the listener called name.
func named(t *testing.T, d *harness.Daemon, name string) string {
	t.Helper()
	return harness.HostPort(t, listenAddr(t, d, name))
}

// listenAddr returns the ListenAddress of the listener called name.
func listenAddr(t *testing.T, d *harness.Daemon, name string) string {
	t.Helper()
	ls := lsJSON(t, d)
	for _, l := range ls {
		if l.Name == name {
			return l.ListenAddress
		}
	}
	t.Fatalf("no listener named %q: %+v", name, ls)
	return ""
}

// tunnelled makes b listen on proto (an echo service) for a, makes a
// forward to it, and returns a client connection through the tunnel.
func tunnelled(t *testing.T, a, b *harness.Daemon, proto string) net.Conn {
	t.Helper()
	if _, errOut, code := b.CLI(t, "listen", proto, echoTarget(t), "--allow", a.ID); code != 0 {
		t.Fatal(errOut)
	}
	out, errOut, code := a.CLI(t, "forward", proto, "127.0.0.1:0", b.Addresses[0])
	if code != 0 {
		t.Fatal(errOut)
	}
	c, err := net.Dial("tcp", harness.HostPort(t, out))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestConfigTunnelsSaveBootReloadAndWait(t *testing.T) {
	b := startDaemon(t)
	aHome, aID := initHome(t)

	// --save puts b's listener in b's config, and it is up now.
	if _, errOut, code := b.CLI(t, "listen", "/x/echo", echoTarget(t), "--allow", aID, "--save", "--name", "echo"); code != 0 {
		t.Fatalf("listen --save: %d %s", code, errOut)
	}
	if out, errOut, code := b.CLI(t, "config", "check"); code != 0 || !strings.Contains(out, "ok (1 listen and 0 forward tunnels)") {
		t.Fatalf("b: config check = %d %q %q, want the saved [[listen]]", code, out, errOut)
	}

	// a boots with one forward from its config.
	appendConfig(t, aHome, forwardTable("one", "/ip4/127.0.0.1/tcp/0", b.Addresses[0]))
	a := startIn(t, aHome, "daemon")
	if out, errOut, code := a.CLI(t, "wait", "--timeout", "20s"); code != 0 || out != "ready: 1 tunnels up\n" {
		t.Fatalf("wait = %d %q %q", code, out, errOut)
	}
	c, err := net.Dial("tcp", named(t, a, "one"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	harness.Echoes(t, c, "boot")

	// Adding a tunnel leaves "one" and the live connection alone.
	appendConfig(t, aHome, forwardTable("two", "/ip4/127.0.0.1/tcp/0", b.Addresses[0]))
	out, errOut, code := a.CLI(t, "reload")
	if code != 0 || out != "reloaded: 1 added, 0 removed, 1 unchanged, 0 restarted\n+ two\n" {
		t.Fatalf("reload = %d %q %q", code, out, errOut)
	}
	harness.Echoes(t, c, "after reload")
	c2, err := net.Dial("tcp", named(t, a, "two"))
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	harness.Echoes(t, c2, "two")

	// A broken file is rejected whole (exit 4, with its line), and
	// nothing changes.
	appendConfig(t, aHome, "\n[[forward]]\nname = \"three\"\nprotocol = \"/x/echo\"\nlisten = \"127.0.0.1:0\"\n")
	_, errOut, code = a.CLI(t, "reload")
	if code != ExitConfig || strings.Count(errOut, "\n") != 1 || !strings.Contains(errOut, "config.toml:") ||
		!strings.Contains(errOut, "peer is required") || !strings.Contains(errOut, "nothing was changed") {
		t.Fatalf("reload of a broken file = %d %q; want exit 4, one line naming the line", code, errOut)
	}
	if _, errOut, code := a.CLI(t, "config", "check"); code != ExitConfig || !strings.Contains(errOut, "peer is required") {
		t.Fatalf("config check of a broken file = %d %q", code, errOut)
	}
	harness.Echoes(t, c, "after rejected reload")

	// A forward to a peer that is not there: reload reports it, and wait
	// times out naming it.
	cfgPath := filepath.Join(aHome, "config.toml")
	good := "[[forward]]\nname = \"one\"\nprotocol = \"/x/echo\"\nlisten = \"/ip4/127.0.0.1/tcp/0\"\npeer = \"" + b.Addresses[0] + "\"\n" +
		forwardTable("ghost", "/ip4/127.0.0.1/tcp/0", fmt.Sprintf("/ip4/127.0.0.1/tcp/%d", testnet.FreePort(t))+"/p2p/12D3KooWGzxzKZYveHXtpG6AsrUJBcWxHBFS2HsEoGTxrMLvKXtf")
	if err := os.WriteFile(cfgPath, []byte(good), 0o600); err != nil {
		t.Fatal(err)
	}
	out, errOut, code = a.CLI(t, "reload", "--json")
	var rr api.ReloadResult
	if code != 0 || json.Unmarshal([]byte(out), &rr) != nil {
		t.Fatalf("reload --json = %d %q %q", code, out, errOut)
	}
	if len(rr.Removed) != 1 || rr.Removed[0] != "two" || len(rr.Failed) != 1 || rr.Failed[0].Name != "ghost" || !strings.Contains(rr.Failed[0].Error, "unreachable") {
		t.Fatalf("reload = %+v; want two removed, ghost failed unreachable", rr)
	}
	if _, err := io.ReadAll(c2); err == nil {
		t.Error("the removed tunnel's connection ended cleanly, want a reset")
	}
	harness.Echoes(t, c, "still one")
	_, errOut, code = a.CLI(t, "wait", "--timeout", "300ms")
	if code != ExitTimeout || strings.Count(errOut, "\n") != 1 || !strings.Contains(errOut, "tunnel ghost (line 7) failed: peer unreachable") {
		t.Fatalf("wait = %d %q; want exit 9 naming ghost", code, errOut)
	}
}

func TestStrictBootFailsOnATunnelThatCannotStart(t *testing.T) {
	home, _ := initHome(t)
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	appendConfig(t, home, forwardTable("busy", taken.Addr().String(), "/ip4/127.0.0.1/tcp/1/p2p/12D3KooWGzxzKZYveHXtpG6AsrUJBcWxHBFS2HsEoGTxrMLvKXtf"))
	appendConfig(t, home, "lazy = true\n")
	_, errOut, code := run(t, "--home", home, "daemon", "--listen-addr", "/ip4/127.0.0.1/tcp/0", "--strict")
	if code != ExitConflict || !strings.Contains(errOut, "tunnel busy (") || !strings.Contains(errOut, "--strict") {
		t.Fatalf("daemon --strict = %d %q; want exit 6 naming the tunnel", code, errOut)
	}
	if _, err := os.Stat(filepath.Join(home, "api.sock")); !os.IsNotExist(err) {
		t.Errorf("the API socket outlived the failed start: %v", err)
	}
}

func TestWaitWithoutDaemonTimesOut(t *testing.T) {
	_, errOut, code := run(t, "--home", harness.TempHome(t), "wait", "--timeout", "200ms")
	if code != ExitTimeout || !strings.Contains(errOut, "no daemon answered") {
		t.Fatalf("wait = %d %q; want exit 9, no daemon answered", code, errOut)
	}
}

func TestEventsJSON(t *testing.T) {
	d := startDaemon(t)
	pr, pw := io.Pipe()
	ctx, cancel := context.WithCancel(context.Background())
	exited := make(chan int, 1)
	go func() {
		exited <- Run(ctx, []string{"--home", d.Home, "events", "--json"}, pw, io.Discard)
		pw.Close()
	}()
	lines := make(chan string)
	go func() {
		defer close(lines)
		dec := json.NewDecoder(pr)
		for {
			var raw json.RawMessage
			if dec.Decode(&raw) != nil {
				io.Copy(io.Discard, pr)
				return
			}
			lines <- string(raw)
		}
	}()
	// Once the daemon has attached the subscriber, no event is missed.
	// (Waiting also keeps the two in-process CLI runs from parsing flags
	// at once: urfave/cli shares its help flag between apps.)
	waitUntil(t, "the events subscriber", func() bool { return strings.Contains(d.Logs.String(), "events subscriber attached") })
	if _, errOut, code := d.CLI(t, "listen", "/x/probe", "127.0.0.1:1", "--allow-all"); code != 0 {
		t.Fatal(errOut)
	}
	if _, errOut, code := d.CLI(t, "close", "-p", "/x/probe"); code != 0 {
		t.Fatal(errOut)
	}
	var evs []map[string]any
	for len(evs) < 2 {
		var ev map[string]any
		if err := json.Unmarshal([]byte(<-lines), &ev); err != nil {
			t.Fatal(err)
		}
		evs = append(evs, ev)
	}
	for i, typ := range []string{"tunnel_up", "tunnel_down"} {
		if evs[i]["Type"] != typ || evs[i]["Protocol"] != "/x/probe" || evs[i]["Time"] == nil {
			t.Errorf("event %d = %v, want %s of /x/probe with a time", i, evs[i], typ)
		}
	}
	cancel()
	if code := <-exited; code != 0 {
		t.Fatalf("events exited %d on interrupt, want 0", code)
	}
	for range lines {
	}
}

func TestSavedInviteForwardKeepsAddressesNotTheSecret(t *testing.T) {
	b := startDaemon(t)
	if _, errOut, code := b.CLI(t, "listen", "/x/echo", echoTarget(t), "--invite-only", "--save"); code != 0 {
		t.Fatalf("listen --invite-only --save: %d %s", code, errOut)
	}
	if out, errOut, code := b.CLI(t, "config", "check"); code != 0 {
		t.Fatalf("b's config after saving an invite-only listener: %d %q %q", code, out, errOut)
	}
	out, errOut, code := b.CLI(t, "share", "/x/echo", "--invite")
	if code != 0 {
		t.Fatalf("share --invite: %d %s", code, errOut)
	}
	tkt := strings.TrimSpace(out)

	aHome, _ := initHome(t)
	a := startIn(t, aHome, "daemon")
	if _, errOut, code := a.CLI(t, "forward", tkt, "127.0.0.1:0", "--save", "--name", "inv"); code != 0 {
		t.Fatalf("forward TICKET --save: %d %s", code, errOut)
	}
	c, err := net.Dial("tcp", named(t, a, "inv"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	harness.Echoes(t, c, "invited")

	saved, err := os.ReadFile(filepath.Join(aHome, "config.toml"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(saved), "peer = \""+b.ID+"\"") || !strings.Contains(string(saved), strings.TrimSuffix(b.Addresses[0], "/p2p/"+b.ID)) {
		t.Errorf("saved [[forward]] lacks the peer or its addresses:\n%s", saved)
	}
	if strings.Contains(string(saved), "\ninvite") || strings.Contains(string(saved), tkt) {
		t.Errorf("the invite was saved:\n%s", saved)
	}
	// The saved table is what runs: a reload leaves it (and c) alone.
	out, errOut, code = a.CLI(t, "reload")
	if code != 0 || !strings.Contains(out, "0 added, 0 removed, 1 unchanged") {
		t.Fatalf("reload = %d %q %q", code, out, errOut)
	}
	harness.Echoes(t, c, "still")
}

// A config.toml that is missing, unreadable or not a file is rejected whole
// by a reload, like one that does not parse: exit 4, one line, and the
// running access policy and tunnels stay (a denied peer is still denied).
func TestReloadRejectsAConfigItCannotRead(t *testing.T) {
	home, _ := initHome(t)
	foe := harness.NewPeerID(t)
	appendConfig(t, home, "\n[[listen]]\nname = \"web\"\nprotocol = \"/x/web\"\ntarget = \""+echoTarget(t)+"\"\nallow_all = true\n")
	cfgPath := filepath.Join(home, "config.toml")
	if err := homedir.SaveAccess(cfgPath, config.Access{Deny: []string{foe}}); err != nil {
		t.Fatal(err)
	}
	good, err := os.ReadFile(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	d := startIn(t, home, "daemon")
	if _, errOut, code := d.CLI(t, "wait", "--timeout", "20s"); code != 0 {
		t.Fatalf("wait: %d %s", code, errOut)
	}
	unchanged := func(t *testing.T) {
		t.Helper()
		out, errOut, code := d.CLI(t, "access", "ls", "--json")
		if code != 0 || !strings.Contains(out, foe) {
			t.Fatalf("access ls = %d %q %q; want %s still denied", code, out, errOut, foe)
		}
		_, errOut, code = d.CLI(t, "forward", "/x/web", "127.0.0.1:0", "/p2p/"+foe)
		if code != ExitDenied {
			t.Fatalf("forward to the denied peer = %d %q, want exit 8", code, errOut)
		}
		out, _, _ = d.CLI(t, "ls", "--json")
		var list api.ListenerList
		if err := json.Unmarshal([]byte(out), &list); err != nil || len(list.Listeners) != 1 || list.Listeners[0].Name != "web" {
			t.Fatalf("listeners = %s (%v); want the config's web only", out, err)
		}
	}
	restore := func(t *testing.T) {
		t.Helper()
		os.Chmod(cfgPath, 0o600)
		if err := os.RemoveAll(cfgPath); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(cfgPath, good, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		name    string
		breakIt func(t *testing.T) error
		want    string
	}{
		{"removed", func(*testing.T) error { return os.Remove(cfgPath) }, "does not exist"},
		{"a directory", func(*testing.T) error {
			if err := os.Remove(cfgPath); err != nil {
				return err
			}
			return os.Mkdir(cfgPath, 0o700)
		}, "is a directory"},
		{"a symlink loop", func(*testing.T) error {
			if err := os.Remove(cfgPath); err != nil {
				return err
			}
			return os.Symlink("config.toml", cfgPath)
		}, "config.toml"},
		{"unreadable", func(t *testing.T) error {
			if os.Geteuid() == 0 {
				t.Skip("root reads any file; the symlink loop covers a read error")
			}
			return os.Chmod(cfgPath, 0)
		}, "permission denied"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			defer restore(t)
			if err := tc.breakIt(t); err != nil {
				t.Fatal(err)
			}
			out, errOut, code := d.CLI(t, "reload")
			if code != ExitConfig {
				t.Fatalf("reload = %d %q %q, want exit 4", code, out, errOut)
			}
			checkOneLineError(t, out, errOut)
			if !strings.Contains(errOut, tc.want) || !strings.Contains(errOut, "nothing was changed") {
				t.Errorf("reload said %q, want %q and that nothing was changed", errOut, tc.want)
			}
			unchanged(t)
		})
	}
}

// A config.toml that is a directory is one line and exit 4 for every
// command that reads it, the daemon included.
func TestConfigThatIsADirectory(t *testing.T) {
	home, _ := initHome(t)
	cfgPath := filepath.Join(home, "config.toml")
	if err := os.Remove(cfgPath); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(cfgPath, 0o700); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"daemon", "--listen-addr", "/ip4/127.0.0.1/tcp/0"},
		{"config", "check"},
		{"config", "show"},
	} {
		out, errOut, code := run(t, append([]string{"--home", home}, args...)...)
		if code != ExitConfig || !strings.Contains(errOut, "is a directory") {
			t.Errorf("%v = %d %q, want exit 4 saying it is a directory", args, code, errOut)
		}
		checkOneLineError(t, out, errOut)
	}
}

// `config check` and the daemon run one validation: a value that would
// break the daemon fails both, with the same line, exit 4.
func TestConfigCheckAndDaemonShareValidation(t *testing.T) {
	for _, tc := range []struct{ old, new, key string }{
		{`keepalive = "15s"`, `keepalive = "1ns"`, "timeouts.keepalive"},
		{`keepalive = "15s"`, `keepalive = "2ns"`, "timeouts.keepalive"},
		{"peer_stream_rate = 100.0", "peer_stream_rate = nan", "limits.peer_stream_rate"},
		{"peer_stream_rate = 100.0", "peer_stream_rate = inf", "limits.peer_stream_rate"},
	} {
		t.Run(tc.new, func(t *testing.T) {
			home, _ := initHome(t)
			path := filepath.Join(home, "config.toml")
			b, err := os.ReadFile(path)
			if err != nil || !strings.Contains(string(b), tc.old) {
				t.Fatalf("the default config lacks %q (%v)", tc.old, err)
			}
			if err := os.WriteFile(path, []byte(strings.Replace(string(b), tc.old, tc.new, 1)), 0o600); err != nil {
				t.Fatal(err)
			}
			out, check, code := run(t, "--home", home, "config", "check")
			if code != ExitConfig || !strings.Contains(check, "config.toml:") || !strings.Contains(check, tc.key) {
				t.Fatalf("config check = %d %q %q, want exit 4 naming the line and %s", code, out, check, tc.key)
			}
			checkOneLineError(t, out, check)
			out, boot, code := run(t, "--home", home, "daemon", "--listen-addr", "/ip4/127.0.0.1/tcp/0")
			if code != ExitConfig || boot != check {
				t.Fatalf("daemon = %d %q, want exit 4 and what config check said, %q", code, boot, check)
			}
			checkOneLineError(t, out, boot)
		})
	}
}
