package config

import (
	"errors"
	"strings"
	"testing"

	"github.com/p2ptun/p2ptun/internal/harness"
)

// TestPeersTable: [peers] names peers for the tunnel tables' peer, peers
// and allow; a bad name or address, or a name nobody defined, is refused
// with its line.
func TestPeersTable(t *testing.T) {
	a, b := harness.NewPeerID(t), harness.NewPeerID(t)
	good := "[peers]\nlaptop = \"/p2p/" + a + "\"\nnas = \"/ip4/127.0.0.1/tcp/4001/p2p/" + b + "\"\n" +
		"[[listen]]\nprotocol = \"/x/web\"\ntarget = \"127.0.0.1:8080\"\nallow = [\"laptop\"]\n" +
		"[[forward]]\nprotocol = \"/x/ssh\"\nlisten = \"2222\"\npeer = \"nas\"\n" +
		"[[forward]]\nprotocol = \"/x/db\"\nlisten = \":5432\"\npeers = [\"laptop\", \"nas\"]\n"
	c, err := Parse("config.toml", []byte(good))
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Listen[0].Spec.Allow; len(got) != 1 || got[0].String() != a {
		t.Errorf("allow = %v, want [%s]", got, a)
	}
	if got := c.Forward[0].Spec.Peer; got.ID.String() != b || len(got.Addrs) != 1 {
		t.Errorf("peer = %v, want %s with its address", got, b)
	}
	if got := c.Forward[0].Spec.Listen.String(); got != "/ip4/127.0.0.1/tcp/2222" {
		t.Errorf("listen = %s", got)
	}
	if got := c.Forward[1].Spec.Peers; len(got) != 2 || got[0].ID.String() != a {
		t.Errorf("peers = %v", got)
	}
	if c.Aliases().NameOfString(a) != "laptop" {
		t.Errorf("Aliases() = %v", c.Aliases())
	}

	for _, tt := range []struct{ name, toml, want string }{
		{"name like a peer ID", "[peers]\n\"" + a + "\" = \"" + a + "\"\n", "peers: peer name"},
		{"bad address", "[peers]\nlaptop = \"nope\"\n", "peers: peer name laptop: "},
		{"unknown name", "[[forward]]\nprotocol = \"/x/ssh\"\nlisten = \"2222\"\npeer = \"desktop\"\n", "p2ptun peer add desktop"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("config.toml", []byte(tt.toml))
			if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Parse = %v, want ErrInvalid containing %q", err, tt.want)
			}
		})
	}
}

// TestPeerKeysTakeNames: every key whose values are peers takes a name
// of [peers] (for relays and bootstrap peers, one for an address);
// an unknown name is refused at the key, with how to add it.
func TestPeerKeysTakeNames(t *testing.T) {
	a := harness.NewPeerID(t)
	names := "[peers]\nlaptop = \"/p2p/" + a + "\"\nhop = \"/ip4/127.0.0.1/tcp/4001/p2p/" + a + "\"\n"
	for _, tt := range []struct{ key, table, name string }{
		{"access.allow", "access", "allow"},
		{"access.deny", "access", "deny"},
		{"relay.allow", "relay", "allow"},
		{"network.relays", "network", "relays"},
		{"discovery.bootstrap", "discovery", "bootstrap"},
	} {
		t.Run(tt.key, func(t *testing.T) {
			peer := "laptop"
			if tt.table == "network" || tt.table == "discovery" {
				peer = "hop"
			}
			c, err := Parse("config.toml", []byte(names+"["+tt.table+"]\n"+tt.name+" = [\""+peer+"\"]\n"))
			if err != nil {
				t.Fatalf("a name: %v", err)
			}
			if c.Aliases().NameOfString(a) == "" {
				t.Fatalf("Aliases() = %v", c.Aliases())
			}
			_, err = Parse("config.toml", []byte(names+"["+tt.table+"]\n"+tt.name+" = [\"desktop\"]\n"))
			if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tt.key+": ") ||
				!strings.Contains(err.Error(), "p2ptun peer add desktop") || strings.Contains(err.Error(), "\n") {
				t.Fatalf("an unknown name: %v, want one line naming %s and `p2ptun peer add desktop`", err, tt.key)
			}
		})
	}
}
