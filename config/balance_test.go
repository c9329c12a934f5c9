package config_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/p2ptun/p2ptun/config"
	"github.com/p2ptun/p2ptun/spec"
)

// TestParseForwardPeers: a [[forward]] table with peers = [...] and a
// balance is a forward with several peers; a bad one is refused at its
// line with spec's reason, and so is a table with neither peer nor peers.
func TestParseForwardPeers(t *testing.T) {
	const a, b = "12D3KooWGzxzKZYveHXtpG6AsrUJBcWxHBFS2HsEoGTxrMLvKXtf", "12D3KooWEkSv4fd5dZ16omAJFrtrUBJetRSzycprDbfBEBiLbcRV"
	table := func(extra string) string {
		return "[timeouts]\ndial = \"3s\"\n\n[[forward]]\nprotocol = \"/x/web\"\nlisten = \"127.0.0.1:9000\"\n" + extra
	}
	c, err := config.Parse("config.toml", []byte(table("peers = [\"/p2p/"+a+"\", \""+b+"\"]\nbalance = \"round-robin\"\n")))
	if err != nil {
		t.Fatal(err)
	}
	f := c.Forward[0]
	if s := f.Spec; len(s.Peers) != 2 || s.Peers[0].ID.String() != a || s.Peers[1].ID.String() != b || s.Balance != spec.BalanceRoundRobin || s.Peer.ID != "" {
		t.Errorf("spec = %+v, want two peers, round-robin", s)
	}
	if len(f.Peers) != 2 || f.Balance != "round-robin" {
		t.Errorf("table = %+v", f)
	}
	// Saved as it was written (forward --save).
	if back := config.ForwardTable(f.Request()); back.Balance != f.Balance || len(back.Peers) != 2 || back.Peer != "" {
		t.Errorf("ForwardTable(Request()) = %+v, want the peers and balance back", back)
	}

	for _, tt := range []struct{ extra, want string }{
		{"peers = [\"" + a + "\", \"" + b + "\"]\nbalance = \"fastest\"\n", `config.toml:4: forward[1] (forward /x/web 127.0.0.1:9000): balance "fastest" is not a policy`},
		{"peers = [\"" + a + "\"]\n", "balancing needs two or more peers (got 1)"},
		{"peer = \"" + a + "\"\npeers = [\"" + b + "\", \"" + a + "\"]\n", "one peer or a list of peers, not both"},
		{"", "peer is required"},
	} {
		_, err := config.Parse("config.toml", []byte(table(tt.extra)))
		if !errors.Is(err, config.ErrInvalid) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Parse(%q) = %v, want ErrInvalid with %q", tt.extra, err, tt.want)
		}
	}
}
