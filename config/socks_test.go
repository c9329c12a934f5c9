package config_test

import (
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/p2ptun/p2ptun/config"
	"github.com/p2ptun/p2ptun/config/homedir"
)

// TestSocksTables: [[listen]] egress/permit and [[forward]] socks parse
// into their specs, are saved by --save as they were given, and a bad
// one is refused at its line with spec's reason.
func TestSocksTables(t *testing.T) {
	const peerID = "12D3KooWGzxzKZYveHXtpG6AsrUJBcWxHBFS2HsEoGTxrMLvKXtf"
	in := "[[listen]]\nprotocol = \"/x/net\"\negress = true\nallow = [\"" + peerID + "\"]\npermit = [\"10.0.0.0/8:22\", \"db.internal:5432\"]\n\n" +
		"[[forward]]\nprotocol = \"/x/net\"\nlisten = \"127.0.0.1:1080\"\npeer = \"/p2p/" + peerID + "\"\nsocks = true\n"
	c, err := config.Parse("config.toml", []byte(in))
	if err != nil {
		t.Fatal(err)
	}
	if l := c.Listen[0].Spec; !l.Egress || l.Target != nil || !slices.Equal(l.Permit.Strings(), []string{"10.0.0.0/8:22", "db.internal:5432"}) {
		t.Errorf("listen spec = %+v", l)
	}
	if f := c.Forward[0].Spec; !f.Socks {
		t.Errorf("forward spec = %+v", f)
	}

	path := filepath.Join(t.TempDir(), "config.toml")
	if err := homedir.AppendListen(path, config.ListenTable(c.Listen[0].Spec.Request)); err != nil {
		t.Fatal(err)
	}
	if err := homedir.AppendForward(path, config.ForwardTable(c.Forward[0].Spec.Request)); err != nil {
		t.Fatal(err)
	}
	saved, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if !saved.Listen[0].Egress || !slices.Equal(saved.Listen[0].Permit, c.Listen[0].Permit) || !saved.Forward[0].Socks {
		t.Fatalf("saved tables = %+v %+v", saved.Listen, saved.Forward)
	}

	for _, tc := range []struct{ name, table, want string }{
		{"egress without permit", "[[listen]]\nprotocol = \"/x/net\"\negress = true\nallow_all = true\n", "config.toml:1: listen[1] (listen /x/net): an --egress listener permits nothing by default"},
		{"bad permit", "[[listen]]\nprotocol = \"/x/net\"\negress = true\nallow_all = true\npermit = [\"*:22\"]\n", "0.0.0.0/0:22"},
		{"egress and target", "[[listen]]\nprotocol = \"/x/net\"\ntarget = \"127.0.0.1:1\"\negress = true\nallow_all = true\npermit = [\"127.0.0.1:1\"]\n", "drop the target"},
		{"public socks", "[[forward]]\nprotocol = \"/x/net\"\nlisten = \"0.0.0.0:1080\"\npeer = \"/p2p/" + peerID + "\"\nsocks = true\n", "gateway"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := config.Parse("config.toml", []byte(tc.table))
			if !errors.Is(err, config.ErrInvalid) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Parse = %v, want ErrInvalid containing %q", err, tc.want)
			}
		})
	}
}
