package homedir_test

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/p2ptun/p2ptun/config"
	"github.com/p2ptun/p2ptun/config/homedir"
)

const (
	peerA = "12D3KooWAi4PnzvqA2WdVd8v2RDRQSjywZPKrTQM7Vfr3E5sh2Nd"
	peerB = "12D3KooWMhX6FD1K73DBEZn8A2Ke2drbwFVjv9x7fmLj4PEKr2XS"
)

func TestSaveAccess(t *testing.T) {
	want := config.Access{Allow: []string{peerA, peerB}, Deny: []string{peerB}}
	for _, tc := range []struct {
		name, before string
		keep         []string // text that must survive the rewrite
	}{
		{"default file", homedir.DefaultConfig, []string{"# Swarm listen addresses", "[limits]", "peer_stream_burst = 1000      # new streams at once", "[timeouts]"}},
		{"no access table", "# mine\n[timeouts]\ndial = \"3s\" # fast\n", []string{"# mine", "dial = \"3s\" # fast"}},
		{"access table last", "[timeouts]\ndial = \"3s\"\n\n[access]\nallow = [\"" + peerB + "\"]\n", []string{"dial = \"3s\""}},
		{"comment before next table", "[access]\ndeny = []\n\n# the timeouts\n[timeouts]\ndial = \"3s\"\n", []string{"# the timeouts\n[timeouts]"}},
		{"missing file", "", []string{"# Swarm listen addresses"}},
		// Headers and keys as TOML allows them, found by go-toml's parser:
		// the edit keeps the header as written and every comment.
		{"header with a comment", "[access] # who may connect\nallow = []\n# keep me\ndeny = [] # none yet\n\n[timeouts]\ndial = \"3s\"\n",
			[]string{"[access] # who may connect\n", "# keep me\n", "] # none yet\n", "[timeouts]\ndial = \"3s\"\n"}},
		{"spaced header", "# mine\n[ access ]\nallow = [\n  \"" + peerA + "\", # old friend\n]\n[timeouts]\n", []string{"# mine\n[ access ]\n", "[timeouts]\n"}},
		{"header only, no newline", "[timeouts]\n[access]", []string{"[timeouts]\n[access]\n"}},
		{"one key missing", "[access]\n  deny = [\"" + peerA + "\"] # x\n[limits]\n", []string{"[access]\n", "  deny = [", "] # x\n[limits]\n"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "config.toml")
			if tc.before != "" {
				if err := os.WriteFile(path, []byte(tc.before), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			for range 2 { // saving twice gives the same file
				if err := homedir.SaveAccess(path, want); err != nil {
					t.Fatal(err)
				}
			}
			b, _ := os.ReadFile(path)
			c, err := config.Parse(path, b)
			if err != nil {
				t.Fatalf("saved file does not parse: %v\n%s", err, b)
			}
			if !reflect.DeepEqual(c.Access, want) {
				t.Fatalf("access = %+v, want %+v", c.Access, want)
			}
			for _, k := range tc.keep {
				if !strings.Contains(string(b), k) {
					t.Errorf("lost %q:\n%s", k, b)
				}
			}
			if st, _ := os.Stat(path); st.Mode().Perm() != 0o600 {
				t.Errorf("mode %v, want 0600", st.Mode().Perm())
			}
		})
	}
}

// The node's policy holds peer IDs: saving it after a runtime edit keeps
// the [peers] names the file wrote for them, and writes IDs only for peers
// it did not list by name.
func TestSaveAccessKeepsNames(t *testing.T) {
	path := filepath.Join(t.TempDir(), "config.toml")
	before := "[peers]\nalice = \"/p2p/" + peerA + "\"\nbob = \"/p2p/" + peerB + "\"\n\n[access]\nallow = [\"alice\"]\n"
	if err := os.WriteFile(path, []byte(before), 0o600); err != nil {
		t.Fatal(err)
	}
	// p2ptun access deny bob (by ID), then access allow alice again.
	if err := homedir.SaveAccess(path, config.Access{Allow: []string{peerA}, Deny: []string{peerB}}); err != nil {
		t.Fatal(err)
	}
	if err := homedir.SaveAccess(path, config.Access{Allow: []string{peerA}, Deny: []string{peerB}}); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(path)
	c, err := config.Parse(path, b)
	if err != nil {
		t.Fatalf("saved file does not parse: %v\n%s", err, b)
	}
	want := config.Access{Allow: []string{"alice"}, Deny: []string{peerB}}
	if !reflect.DeepEqual(c.Access, want) {
		t.Fatalf("access = %+v, want %+v\n%s", c.Access, want, b)
	}
	// Once bob is listed by name, a later save keeps that too.
	if err := os.WriteFile(path, []byte(before+"deny = [\"bob\"]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := homedir.SaveAccess(path, config.Access{Allow: []string{peerA, peerB}}); err != nil {
		t.Fatal(err)
	}
	b, _ = os.ReadFile(path)
	if c, err = config.Parse(path, b); err != nil {
		t.Fatal(err)
	}
	if want := []string{"alice", "bob"}; !reflect.DeepEqual(c.Access.Allow, want) || len(c.Access.Deny) != 0 {
		t.Fatalf("access = %+v, want allow %v and no deny\n%s", c.Access, want, b)
	}
}

func TestSaveAccessRefusesToBreakTheFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "config.toml")
	broken := "[network]\nlisten_adrs = []\n"
	os.WriteFile(path, []byte(broken), 0o600)
	if err := homedir.SaveAccess(path, config.Access{Allow: []string{peerA}}); !errors.Is(err, config.ErrInvalid) {
		t.Fatalf("err = %v, want ErrInvalid", err)
	}
	if b, _ := os.ReadFile(path); string(b) != broken {
		t.Fatalf("a failed save changed the file:\n%s", b)
	}
	if entries, _ := os.ReadDir(filepath.Dir(path)); len(entries) != 1 {
		t.Fatalf("temporary files left behind: %v", entries)
	}
}

func swarmKey(t *testing.T) string {
	t.Helper()
	k := make([]byte, 32)
	rand.Read(k)
	return "/key/swarm/psk/1.0.0/\n/base16/\n" + hex.EncodeToString(k) + "\n"
}

func TestLoadSwarmKey(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), mode); err != nil {
			t.Fatal(err)
		}
		os.Chmod(p, mode)
		return p
	}
	good := swarmKey(t)
	psk, err := homedir.LoadSwarmKey(write("good", good, 0o600))
	if err != nil || len(psk) != 32 {
		t.Fatalf("valid key: %v (len %d)", err, len(psk))
	}
	for _, tc := range []struct {
		name, path, want string
	}{
		{"readable by others", write("open", good, 0o644), "chmod 600"},
		{"not a swarm key", write("bad", "hello\n", 0o600), "swarm.key format"},
		{"short key", write("short", "/key/swarm/psk/1.0.0/\n/base16/\nabcd\n", 0o600), "swarm.key format"},
		{"missing", filepath.Join(dir, "none"), "does not exist"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := homedir.LoadSwarmKey(tc.path)
			if !errors.Is(err, homedir.ErrKey) || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "\n") {
				t.Fatalf("err = %v, want a one-line ErrKey containing %q", err, tc.want)
			}
		})
	}
}

// TestAppendWritesDoubleQuotes: a --save'd table is written in the style
// of the file around it (init's and hand edits' "..."), not go-toml's
// '...', and means the same.
func TestAppendWritesDoubleQuotes(t *testing.T) {
	path := filepath.Join(t.TempDir(), "config.toml")
	want := config.ListenTunnel{Name: "web", Protocol: "/x/web", Target: "127.0.0.1:8080",
		Allow: []string{"12D3KooWGzxzKZYveHXtpG6AsrUJBcWxHBFS2HsEoGTxrMLvKXtf"}}
	if err := homedir.AppendListen(path, want); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	table := string(b[strings.LastIndex(string(b), "[[listen]]"):])
	golden := `[[listen]]
name = "web"
protocol = "/x/web"
target = "127.0.0.1:8080"
allow = ["12D3KooWGzxzKZYveHXtpG6AsrUJBcWxHBFS2HsEoGTxrMLvKXtf"]
`
	if table != golden {
		t.Errorf("saved table:\n%s\nwant:\n%s", table, golden)
	}
	c, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Listen) != 1 || c.Listen[0].Name != want.Name || c.Listen[0].Target != want.Target || c.Listen[0].Allow[0] != want.Allow[0] {
		t.Errorf("saved tunnel reads back as %+v, want %+v", c.Listen, want)
	}
}

func TestDoubleQuoted(t *testing.T) {
	for _, tc := range []struct{ name, in, want string }{
		{"literal", "a = 'x'\n", "a = \"x\"\n"},
		{"array", "a = ['x', 'y']\n", "a = [\"x\", \"y\"]\n"},
		{"basic kept", "a = \"it's\"\n", "a = \"it's\"\n"},
		{"escaped basic kept", "a = \"q\\\"'x'\"\nb = 'y'\n", "a = \"q\\\"'x'\"\nb = \"y\"\n"},
		{"quote inside stays literal", "a = 'say \"hi\"'\n", "a = 'say \"hi\"'\n"},
		{"backslash stays literal", "a = 'C:\\dir'\n", "a = 'C:\\dir'\n"},
		{"numbers and bools", "a = 1\nb = true\n", "a = 1\nb = true\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := string(homedir.DoubleQuoted([]byte(tc.in))); got != tc.want {
				t.Errorf("DoubleQuoted(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}
