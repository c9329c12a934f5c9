package cli

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/p2ptun/p2ptun/api"
	"github.com/p2ptun/p2ptun/config"
	"github.com/p2ptun/p2ptun/config/homedir"
	"github.com/p2ptun/p2ptun/internal/harness"
)

func TestAccessCommands(t *testing.T) {
	d := startDaemon(t)
	friend, foe := harness.NewPeerID(t), harness.NewPeerID(t)
	n := &normalizer{}
	n.add(friend, "<FRIEND>")
	n.add(foe, "<FOE>")

	var all strings.Builder
	for _, step := range []struct {
		args []string
		code int
	}{
		{[]string{"access", "ls"}, 0},
		{[]string{"access", "allow", friend}, 0},
		{[]string{"access", "deny", foe}, 0},
		{[]string{"access", "ls", "--json"}, 0},
		{[]string{"forward", "/x/web", "127.0.0.1:0", "/p2p/" + foe}, ExitDenied},
		{[]string{"access", "revoke", friend}, 0},
		{[]string{"access", "revoke", friend}, ExitNotFound},
		{[]string{"access", "allow", "not-a-peer"}, ExitUsage},
		{[]string{"access", "deny"}, ExitUsage},
	} {
		out, errOut, code := d.CLI(t, step.args...)
		if code != step.code {
			t.Fatalf("%v: exit %d, want %d (%s)", step.args, code, step.code, errOut)
		}
		fmt.Fprintf(&all, "$ p2ptun %s  (exit %d)\n%s%s", n.apply(strings.Join(step.args, " ")), code, n.apply(out), n.apply(errOut))
	}
	golden(t, "access.golden", all.String())

	// The policy was persisted into config.toml, comments and all.
	b, err := os.ReadFile(filepath.Join(d.Home, "config.toml"))
	if err != nil {
		t.Fatal(err)
	}
	c, err := config.Parse("config.toml", b)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Access.Allow) != 0 || len(c.Access.Deny) != 1 || c.Access.Deny[0] != foe {
		t.Fatalf("persisted access = %+v, want deny [foe] only", c.Access)
	}
	if !strings.Contains(string(b), "# Swarm listen addresses") {
		t.Fatal("saving the policy lost the config file's comments")
	}
}

func TestConfigShow(t *testing.T) {
	home := harness.TempHome(t)
	if _, errOut, code := run(t, "--home", home, "init"); code != 0 {
		t.Fatal(errOut)
	}
	out, errOut, code := run(t, "--home", home, "config", "show")
	if code != 0 {
		t.Fatalf("config show: %d %s", code, errOut)
	}
	golden(t, "config-show.golden", out)
	// What it prints is itself a valid config equal to the defaults.
	c, err := config.Parse("shown", []byte(out))
	if err != nil {
		t.Fatalf("config show output does not parse: %v", err)
	}
	if c.Limits != config.Default().Limits {
		t.Fatalf("shown limits %+v differ from the defaults", c.Limits)
	}
	os.WriteFile(filepath.Join(home, "config.toml"), []byte("[limits]\npeer_streams = 7\n"), 0o600)
	out, _, _ = run(t, "--home", home, "config", "show", "--json")
	if !strings.Contains(out, `"PeerStreams": 7`) || !strings.Contains(out, `"ListenerPeerStreams": 2048`) {
		t.Fatalf("config show --json should merge the file over the defaults:\n%s", out)
	}
}

func writeSwarmKey(t *testing.T, path string, mode os.FileMode) {
	t.Helper()
	k := make([]byte, 32)
	rand.Read(k)
	if err := os.WriteFile(path, []byte("/key/swarm/psk/1.0.0/\n/base16/\n"+hex.EncodeToString(k)+"\n"), mode); err != nil {
		t.Fatal(err)
	}
	os.Chmod(path, mode)
}

func TestDaemonSwarmKey(t *testing.T) {
	dir := filepath.Dir(harness.TempHome(t))
	key := filepath.Join(dir, "swarm.key")
	writeSwarmKey(t, key, 0o600)

	d := startDaemon(t, "--swarm-key", key)
	out, _, _ := d.CLI(t, "id")
	if strings.Contains(out, "quic") || !strings.Contains(out, "/tcp/") {
		t.Fatalf("private node addresses = %q, want TCP only", out)
	}

	for name, tc := range map[string]struct {
		args []string
		want string
	}{
		"QUIC with a key":            {[]string{"--listen-addr", "/ip4/127.0.0.1/udp/0/quic-v1", "--swarm-key", key}, "TCP and WebSocket"},
		"key readable by others":     {[]string{"--listen-addr", "/ip4/127.0.0.1/tcp/0", "--swarm-key", filepath.Join(dir, "open.key")}, "chmod 600"},
		"key file missing":           {[]string{"--listen-addr", "/ip4/127.0.0.1/tcp/0", "--swarm-key", filepath.Join(dir, "none.key")}, "does not exist"},
		"bad peer in --deny-peer":    {[]string{"--listen-addr", "/ip4/127.0.0.1/tcp/0", "--deny-peer", "12D3KooW0OIl"}, "not a peer ID"}, // not base58; "nope" would be a name
		"api socket in a shared dir": {[]string{"--listen-addr", "/ip4/127.0.0.1/tcp/0", "--api", filepath.Join(os.TempDir(), "p2ptun-test.sock")}, "shared directory"},
	} {
		t.Run(name, func(t *testing.T) {
			writeSwarmKey(t, filepath.Join(dir, "open.key"), 0o644)
			home := harness.TempHome(t)
			_, errOut, code := run(t, append([]string{"--home", home, "daemon"}, tc.args...)...)
			// The last line is the error; lines before are the daemon's log.
			lines := strings.Split(strings.TrimSpace(errOut), "\n")
			last := lines[len(lines)-1]
			if code == 0 || !strings.HasPrefix(last, "p2ptun: ") || !strings.Contains(last, tc.want) {
				t.Fatalf("exit %d, stderr %q; want a failure naming %q", code, errOut, tc.want)
			}
			if _, err := os.Lstat(filepath.Join(home, "api.sock")); !os.IsNotExist(err) {
				t.Fatal("a refused daemon left its API socket")
			}
		})
	}
}

// --allow-peer and --deny-peer hold for the run: a runtime `access` edit
// saves the file's lists only, and a reload keeps them in force.
func TestRunOnlyPeersAreNeverSaved(t *testing.T) {
	home, _ := initHome(t)
	filed, friend, foe, other := harness.NewPeerID(t), harness.NewPeerID(t), harness.NewPeerID(t), harness.NewPeerID(t)
	cfgPath := filepath.Join(home, "config.toml")
	if err := homedir.SaveAccess(cfgPath, config.Access{Allow: []string{filed}}); err != nil {
		t.Fatal(err)
	}
	d := startIn(t, home, "daemon", "--allow-peer", friend, "--deny-peer", foe)
	inForce := func(t *testing.T, what string, allow, deny []string) {
		t.Helper()
		out, errOut, code := d.CLI(t, "access", "ls", "--json")
		var l api.AccessList
		if code != 0 || json.Unmarshal([]byte(out), &l) != nil {
			t.Fatalf("access ls = %d %q %q", code, out, errOut)
		}
		slices.Sort(allow)
		slices.Sort(deny)
		if !slices.Equal(l.Allow, allow) || !slices.Equal(l.Deny, deny) {
			t.Fatalf("%s: policy in force = %+v, want allow %v deny %v", what, l, allow, deny)
		}
	}
	saved := func(t *testing.T, what string, want config.Access) {
		t.Helper()
		c, err := config.LoadFile(cfgPath)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(c.Access, want) {
			t.Fatalf("%s: saved [access] = %+v, want %+v (no run-only peer)", what, c.Access, want)
		}
	}
	inForce(t, "at boot", []string{filed, friend}, []string{foe})
	for _, step := range [][]string{{"deny", other}, {"revoke", foe}, {"allow", filed}} {
		if _, errOut, code := d.CLI(t, append([]string{"access"}, step...)...); code != 0 {
			t.Fatalf("access %v: %d %s", step, code, errOut)
		}
	}
	inForce(t, "after the edits", []string{filed, friend}, []string{other})
	saved(t, "after the edits", config.Access{Allow: []string{filed}, Deny: []string{other}})
	if _, errOut, code := d.CLI(t, "reload"); code != 0 {
		t.Fatalf("reload: %d %s", code, errOut)
	}
	inForce(t, "after a reload", []string{filed, friend}, []string{foe, other})
	saved(t, "after a reload", config.Access{Allow: []string{filed}, Deny: []string{other}})
}
