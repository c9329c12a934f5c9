package homedir

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/p2ptun/p2ptun/config"
	"github.com/p2ptun/p2ptun/internal/harness"
	"github.com/p2ptun/p2ptun/spec"
)

// TestSetPeerName: names are added to [peers], replaced and removed in
// place; the rest of the file, comments included, stays; a bad name or
// address changes nothing.
func TestSetPeerName(t *testing.T) {
	a, b := harness.NewPeerID(t), harness.NewPeerID(t)
	path := filepath.Join(t.TempDir(), "config.toml")
	const head = "# my notes\n[network]\nlisten_addrs = [\"/ip4/127.0.0.1/tcp/0\"] # loopback\n"
	if err := os.WriteFile(path, []byte(head), 0o600); err != nil {
		t.Fatal(err)
	}
	names := func() map[string]string {
		t.Helper()
		c, err := config.LoadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		return c.Peers
	}
	steps := []struct {
		name, addr string
		want       map[string]string
		wantErr    error
	}{
		{name: "laptop", addr: "/p2p/" + a, want: map[string]string{"laptop": "/p2p/" + a}},
		{name: "nas", addr: "/ip4/127.0.0.1/tcp/4001/p2p/" + b, want: map[string]string{"laptop": "/p2p/" + a, "nas": "/ip4/127.0.0.1/tcp/4001/p2p/" + b}},
		{name: "laptop", addr: b, want: map[string]string{"laptop": b, "nas": "/ip4/127.0.0.1/tcp/4001/p2p/" + b}},
		{name: "nas", addr: "", want: map[string]string{"laptop": b}},
		{name: "nas", addr: "", wantErr: spec.ErrInvalid, want: map[string]string{"laptop": b}},
		{name: "desk", addr: "nope", wantErr: config.ErrInvalid, want: map[string]string{"laptop": b}},
		{name: a, addr: "/p2p/" + a, wantErr: spec.ErrInvalid, want: map[string]string{"laptop": b}},
		{name: "laptop", addr: "", want: nil},
	}
	for i, s := range steps {
		err := SetPeerName(path, s.name, s.addr)
		if s.wantErr == nil && err != nil || s.wantErr != nil && !errors.Is(err, s.wantErr) {
			t.Fatalf("step %d: SetPeerName(%s, %q) = %v, want %v", i, s.name, s.addr, err, s.wantErr)
		}
		got := names()
		if len(got) != len(s.want) {
			t.Fatalf("step %d: peers = %v, want %v", i, got, s.want)
		}
		for k, v := range s.want {
			if got[k] != v {
				t.Fatalf("step %d: peers = %v, want %v", i, got, s.want)
			}
		}
	}
	out, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(out), head) {
		t.Errorf("the rest of the file changed:\n%s", out)
	}
}
