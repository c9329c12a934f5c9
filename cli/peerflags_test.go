package cli

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/p2ptun/p2ptun/config"
	"github.com/p2ptun/p2ptun/config/homedir"
	"github.com/p2ptun/p2ptun/internal/harness"
)

// namedHome is a fresh initialised HOME whose [peers] names are names
// (NAME = address), and whose [access] lists are access.
func namedHome(t *testing.T, names map[string]string, access config.Access) string {
	t.Helper()
	home, _ := initHome(t)
	nameIn(t, home, names, access)
	return home
}

// nameIn gives home's config.toml the [peers] names and the [access]
// lists access.
func nameIn(t *testing.T, home string, names map[string]string, access config.Access) {
	t.Helper()
	var b strings.Builder
	b.WriteString("\n[peers]\n")
	for name, addr := range names {
		b.WriteString(name + " = \"" + addr + "\"\n")
	}
	appendConfig(t, home, b.String())
	if access.Allow != nil || access.Deny != nil {
		if err := homedir.SaveAccess(filepath.Join(home, config.ConfigFile), access); err != nil {
			t.Fatal(err)
		}
	}
}

// TestPeerNamesInDaemonFlagsAndConfig: every daemon flag and config key
// that takes a peer takes a name of [peers] too, resolved when the daemon
// starts: the relay's --allow and --relay (a relayed tunnel works only
// if both were resolved), [access] allow, --allow-peer and --deny-peer (a
// named peer gets in, another is refused). An unknown name is bad input
// naming the flag or key and `p2ptun peer add NAME`, and starts nothing.
func TestPeerNamesInDaemonFlagsAndConfig(t *testing.T) {
	a, b := startDaemon(t), startDaemon(t)
	peers := map[string]string{"alice": "/p2p/" + a.ID, "bob": "/p2p/" + b.ID}

	t.Run("relay --allow and --relay", func(t *testing.T) {
		// Both ends of a relayed connection must be on the relay's list:
		// a as "alice", and the listening side as "server".
		home, id := initHome(t)
		r := startIn(t, namedHome(t, map[string]string{"alice": "/p2p/" + a.ID, "server": "/p2p/" + id}, config.Access{}),
			"relay", "--allow", "alice", "--allow", "server")
		// The server reaches the relay by its name "hop", and holds a
		// reservation on it since the relay allows it by name.
		nameIn(t, home, map[string]string{"hop": r.Addresses[0]}, config.Access{})
		b2 := startIn(t, home, "daemon", "--relay", "hop", "--reachability", "private")
		circuit := circuitAddr(t, b2)
		mustCLI(t, b2, "listen", "/x/r", echoTarget(t), "--allow", a.ID)
		out := mustCLI(t, a, "forward", "/x/r", "127.0.0.1:0", circuit)
		conn, err := net.Dial("tcp", harness.HostPort(t, out))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		harness.Echoes(t, conn, "via a relay that allows peers by name")
	})
	t.Run("[access] allow, --allow-peer, --deny-peer", func(t *testing.T) {
		for _, tc := range []struct {
			name   string
			access config.Access
			flags  []string
		}{
			{"[access] allow", config.Access{Allow: []string{"alice"}}, nil},
			{"[access] deny", config.Access{Deny: []string{"bob"}}, nil},
			{"--allow-peer", config.Access{}, []string{"--allow-peer", "alice"}},
			{"--deny-peer", config.Access{}, []string{"--deny-peer", "bob"}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				d := startIn(t, namedHome(t, peers, tc.access), "daemon", tc.flags...)
				if _, errOut, code := a.CLI(t, "ping", "-n", "1", d.Addresses[0]); code != 0 {
					t.Errorf("alice pings: exit %d %s, want 0", code, errOut)
				}
				if _, _, code := b.CLI(t, "ping", "-n", "1", d.Addresses[0]); code == 0 {
					t.Errorf("bob pings: exit 0, want refused")
				}
			})
		}
	})
	t.Run("unknown name", func(t *testing.T) {
		for _, tc := range []struct {
			name   string
			access config.Access
			args   []string
			code   int
			where  string
		}{
			{"--allow-peer", config.Access{}, []string{"daemon", "--allow-peer", "carol"}, ExitUsage, "--allow-peer"},
			{"--deny-peer", config.Access{}, []string{"daemon", "--deny-peer", "carol"}, ExitUsage, "--deny-peer"},
			{"--relay", config.Access{}, []string{"daemon", "--relay", "carol"}, ExitUsage, "--relay"},
			{"--bootstrap", config.Access{}, []string{"daemon", "--bootstrap", "carol"}, ExitUsage, "--bootstrap"},
			{"relay --allow", config.Access{}, []string{"relay", "--allow", "carol"}, ExitUsage, "--allow"},
			{"[access] allow", config.Access{Allow: []string{"carol"}}, []string{"daemon"}, ExitConfig, "access.allow"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				home := namedHome(t, peers, config.Access{})
				if tc.access.Allow != nil {
					// SaveAccess refuses a list that names no peer:
					// write it as a user would.
					path := filepath.Join(home, config.ConfigFile)
					b, err := os.ReadFile(path)
					if err != nil {
						t.Fatal(err)
					}
					edited := strings.Replace(string(b), "\nallow = []\n", "\nallow = [\"carol\"]\n", 1)
					if edited == string(b) {
						t.Fatal("the default config.toml has no [access] allow = [] to edit")
					}
					if err := os.WriteFile(path, []byte(edited), 0o600); err != nil {
						t.Fatal(err)
					}
				}
				args := append([]string{"--home", home}, tc.args...)
				args = append(args, "--listen-addr", "/ip4/127.0.0.1/tcp/0")
				_, errOut, code := run(t, args...)
				if code != tc.code || strings.Count(errOut, "\n") != 1 || !strings.Contains(errOut, tc.where) ||
					!strings.Contains(errOut, "p2ptun peer add carol") {
					t.Errorf("%v: exit %d %q, want %d and one line naming %s and `p2ptun peer add carol`", tc.args, code, errOut, tc.code, tc.where)
				}
				if _, err := os.Stat(filepath.Join(home, config.APISocket)); err == nil {
					t.Errorf("%v left its API socket behind", tc.args)
				}
			})
		}
	})
}

// TestPeerRmOfANameInUse: `peer rm` leaves config.toml as it was when a
// list of it still uses the name (the file would no longer load).
func TestPeerRmOfANameInUse(t *testing.T) {
	home := namedHome(t, map[string]string{"alice": "/p2p/" + harness.NewPeerID(t)}, config.Access{Allow: []string{"alice"}})
	path := filepath.Join(home, config.ConfigFile)
	before, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	_, errOut, code := run(t, "--home", home, "peer", "rm", "alice")
	if code != ExitConfig || !strings.Contains(errOut, "access.allow") || strings.Count(errOut, "\n") != 1 {
		t.Errorf("peer rm alice: exit %d %q, want %d and one line naming access.allow", code, errOut, ExitConfig)
	}
	if after, err := os.ReadFile(path); err != nil || string(after) != string(before) {
		t.Errorf("peer rm alice changed config.toml (%v)", err)
	}
}
