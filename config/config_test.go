package config_test

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"go.uber.org/goleak"

	"github.com/p2ptun/p2ptun/config"
	"github.com/p2ptun/p2ptun/config/homedir"
	"github.com/p2ptun/p2ptun/spec"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestParseEmptyIsDefault(t *testing.T) {
	got, err := config.Parse("empty.toml", nil)
	if err != nil {
		t.Fatalf("Parse(empty): %v", err)
	}
	if want := config.Default(); !reflect.DeepEqual(got, want) {
		t.Errorf("Parse(empty) = %+v, want %+v", got, want)
	}
}

func TestParseOverrides(t *testing.T) {
	in := "[network]\nlisten_addrs = [\"/ip4/127.0.0.1/tcp/0\"]\n[timeouts]\ndial = \"2s\"\nshutdown = \"0s\"\n"
	got, err := config.Parse("c.toml", []byte(in))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	want := config.Default()
	want.Network.ListenAddrs = []string{"/ip4/127.0.0.1/tcp/0"}
	want.Timeouts.Dial = config.D(2e9)
	// A zero duration means "use the default".
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Parse = %+v, want %+v", got, want)
	}
}

func TestParseErrors(t *testing.T) {
	const name = "/home/u/.p2ptun/config.toml"
	tests := []struct {
		name string
		in   string
		want []string // substrings of the error message, besides the file name
	}{
		{
			name: "unknown key",
			in:   "[network]\nlisten_adrs = []\n",
			want: []string{name + ":2:", "unknown key", "network.listen_adrs"},
		},
		{
			name: "unknown key on later line",
			in:   "[identity]\nkey_file = \"k\"\n\n[timeouts]\ndail = \"1s\"\n",
			want: []string{name + ":5:", "unknown key", "timeouts.dail"},
		},
		{
			name: "unknown table",
			in:   "[netwerk]\nlisten_addrs = []\n",
			want: []string{"unknown key", "netwerk"},
		},
		{
			name: "bad duration",
			in:   "[timeouts]\ndial = \"fast\"\n",
			want: []string{name + ":2:", "invalid duration", `"fast"`},
		},
		{
			name: "duration without unit",
			in:   "[timeouts]\nstream_open = \"10\"\n",
			want: []string{name + ":2:", "invalid duration"},
		},
		{
			name: "bare integer duration",
			in:   "[timeouts]\ndial = 5\n",
			want: []string{"invalid duration", `"5"`},
		},
		{
			name: "wrong type",
			in:   "[identity]\nkey_file = 3\n",
			want: []string{name + ":2:"},
		},
		{
			name: "bad multiaddr in listen_addrs",
			in:   "[network]\nlisten_addrs = [\"/ip4/0.0.0.0/tcp/4141\", \"0.0.0.0:4141\"]\n",
			want: []string{name + ":2: ", "network.listen_addrs", `"0.0.0.0:4141"`, "not a multiaddr"},
		},
		{
			name: "listen_addrs on a transport the swarm does not run",
			in:   "[network]\nlisten_addrs = [\"/ip4/0.0.0.0/tcp/4141\", \"/unix/tmp/p2ptun.sock\"]\n",
			want: []string{name + ":2: ", "network.listen_addrs", "cannot listen on /unix/tmp/p2ptun.sock"},
		},
		{
			name: "empty listen_addrs",
			in:   "[identity]\n[network]\nlisten_addrs = []\n",
			want: []string{name + ":3: ", "network.listen_addrs is empty"},
		},
		{
			name: "negative duration",
			in:   "[network]\nreachability = \"auto\"\n[timeouts]\n\ntarget_dial = \"-1s\"\n",
			want: []string{name + ":5: ", "timeouts.target_dial", "negative"},
		},
		{
			name: "negative duration under a quoted header with a comment",
			in:   "[ \"timeouts\" ] # mine\n\n  target_dial = \"-1s\"\n",
			want: []string{name + ":3: ", "timeouts.target_dial", "negative"},
		},
		{
			name: "listen tunnel without allowlist",
			in:   "[timeouts]\n\n[[listen]]\nprotocol = \"/x/a\"\ntarget = \"127.0.0.1:1\"\nallow_all = true\n[[listen]]\nname = \"web\"\nprotocol = \"/x/web\"\ntarget = \"127.0.0.1:8080\"\n",
			want: []string{name + ":7: ", "listen[2] (web)", "allow is empty", "allow_all = true"},
		},
		{
			name: "forward tunnel with bad peer",
			in:   "[[forward]]\nprotocol = \"/x/a\"\nlisten = \"127.0.0.1:9000\"\npeer = \"bogus\"\n",
			want: []string{name + ":1: ", "forward[1] (forward /x/a 127.0.0.1:9000)", `no peer is named "bogus"`},
		},
		{
			name: "listen tunnel outside /x/",
			in:   "\n[[listen]]\nprotocol = \"/web\"\ntarget = \"127.0.0.1:1\"\nallow_all = true\n",
			want: []string{name + ":2: ", "listen[1] (listen /web)", `protocol "/web" must start with /x/`},
		},
		{
			name: "forward tunnel binding a name",
			in:   "[[forward]]\nprotocol = \"/x/a\"\nlisten = \"/dns/localhost/tcp/9000\"\npeer = \"12D3KooWGzxzKZYveHXtpG6AsrUJBcWxHBFS2HsEoGTxrMLvKXtf\"\n",
			want: []string{name + ":1: ", "forward[1]", `listen address "/dns/localhost/tcp/9000" must use an IP (or localhost), not a name`},
		},
		{
			name: "forward tunnel missing listen",
			in:   "\n[[forward]]\nprotocol = \"/x/a\"\npeer = \"/p2p/12D3KooWGzxzKZYveHXtpG6AsrUJBcWxHBFS2HsEoGTxrMLvKXtf\"\n",
			want: []string{name + ":2: ", "listen is required"},
		},
		{
			name: "two listens on one protocol",
			in:   "[[listen]]\nprotocol = \"/x/a\"\ntarget = \"127.0.0.1:1\"\nallow_all = true\n[[listen]]\nprotocol = \"/x/a\"\ntarget = \"127.0.0.1:2\"\nallow_all = true\n",
			want: []string{name + ":5: ", "/x/a is already served by the [[listen]] on line 1"},
		},
		{
			name: "duplicate tunnel names",
			in:   "[[listen]]\nname = \"x\"\nprotocol = \"/x/a\"\ntarget = \"127.0.0.1:1\"\nallow_all = true\n[[forward]]\nname = \"x\"\nprotocol = \"/x/a\"\nlisten = \"127.0.0.1:9\"\npeer = \"12D3KooWGzxzKZYveHXtpG6AsrUJBcWxHBFS2HsEoGTxrMLvKXtf\"\n",
			want: []string{name + ":6: ", `name "x" is already used by the tunnel on line 1`},
		},
		{
			name: "unknown key in a tunnel",
			in:   "[[forward]]\nprotocol = \"/x/a\"\nlisten_addr = \"127.0.0.1:9\"\n",
			want: []string{name + ":3:", "unknown key", "forward.listen_addr"},
		},
		{
			name: "metrics address without a port",
			in:   "[metrics]\nlisten = \"127.0.0.1\"\n",
			want: []string{name + ":", "metrics.listen", "127.0.0.1:9464"},
		},
		{
			name: "malformed TOML unclosed table",
			in:   "[network\nlisten_addrs = []\n",
			want: []string{name + ":1:"},
		},
		{
			name: "malformed TOML missing value",
			in:   "[timeouts]\n\ndial =\n",
			want: []string{name + ":3:"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := config.Parse(name, []byte(tt.in))
			if err == nil {
				t.Fatalf("Parse(%q) = %+v, want error", tt.in, got)
			}
			if !errors.Is(err, config.ErrInvalid) {
				t.Errorf("error %q does not wrap ErrInvalid", err)
			}
			if !reflect.DeepEqual(got, config.Config{}) {
				t.Errorf("Parse returned %+v with an error, want zero Config", got)
			}
			msg := err.Error()
			if !strings.Contains(msg, name) {
				t.Errorf("error %q does not name the file %q", msg, name)
			}
			for _, w := range tt.want {
				if !strings.Contains(msg, w) {
					t.Errorf("error %q does not contain %q", msg, w)
				}
			}
		})
	}
}

func TestParseTunnels(t *testing.T) {
	const peerID = "12D3KooWGzxzKZYveHXtpG6AsrUJBcWxHBFS2HsEoGTxrMLvKXtf"
	in := "# tunnels\n[[listen]]\nname = \"web\"\nprotocol = \"/x/web\"\ntarget = \"127.0.0.1:8080\"\nallow = [\"" + peerID + "\"]\n\n" +
		"[[forward]]\nprotocol = \"/x/db\"\nlisten = \"/ip4/127.0.0.1/tcp/5432\"\npeer = \"/p2p/" + peerID + "\"\nlazy = true\n"
	c, err := config.Parse("config.toml", []byte(in))
	if err != nil {
		t.Fatal(err)
	}
	wantL := []config.ListenTunnel{{Name: "web", Protocol: "/x/web", Target: "127.0.0.1:8080", Allow: []string{peerID}, Line: 2}}
	wantF := []config.ForwardTunnel{{Protocol: "/x/db", Listen: "/ip4/127.0.0.1/tcp/5432", Peer: "/p2p/" + peerID, Lazy: true, Line: 8}}
	// Each table is parsed into its spec at load.
	l, f := c.Listen[0].Spec, c.Forward[0].Spec
	if l.Kind != spec.KindListen || l.Name != "web" || l.Target.String() != "/ip4/127.0.0.1/tcp/8080" || len(l.Allow) != 1 || l.Allow[0].String() != peerID {
		t.Errorf("listen spec = %+v", l)
	}
	if f.Kind != spec.KindForward || f.Listen.String() != "/ip4/127.0.0.1/tcp/5432" || f.Peer.ID.String() != peerID || !f.Lazy {
		t.Errorf("forward spec = %+v", f)
	}
	c.Listen[0].Spec, c.Forward[0].Spec = spec.Spec{}, spec.Spec{}
	if !reflect.DeepEqual(c.Listen, wantL) || !reflect.DeepEqual(c.Forward, wantF) {
		t.Fatalf("tunnels = %+v %+v, want %+v %+v", c.Listen, c.Forward, wantL, wantF)
	}
}

func TestLoadMissingFileIsDefault(t *testing.T) {
	got, err := config.Load(filepath.Join(t.TempDir(), "nope", config.ConfigFile))
	if err != nil {
		t.Fatalf("Load(missing): %v", err)
	}
	if want := config.Default(); !reflect.DeepEqual(got, want) {
		t.Errorf("Load(missing) = %+v, want %+v", got, want)
	}
}

func TestLoadInvalidFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), config.ConfigFile)
	if err := os.WriteFile(path, []byte("[network]\nlisten_adrs = []\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := config.Load(path)
	if !errors.Is(err, config.ErrInvalid) {
		t.Fatalf("Load = %v, want ErrInvalid", err)
	}
	if !strings.Contains(err.Error(), path+":2:") {
		t.Errorf("error %q does not name %s:2:", err, path)
	}
}

func TestKeyPath(t *testing.T) {
	c := config.Default()
	if got, want := c.KeyPath("/h"), filepath.Join("/h", config.KeyFile); got != want {
		t.Errorf("KeyPath relative = %q, want %q", got, want)
	}
	c.Identity.KeyFile = "/abs/k"
	if got := c.KeyPath("/h"); got != "/abs/k" {
		t.Errorf("KeyPath absolute = %q, want /abs/k", got)
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(homedir.DefaultConfig))
	f.Add([]byte(""))
	f.Add([]byte("[network]\nlisten_adrs = []\n"))
	f.Add([]byte("[network]\nlisten_addrs = []\n"))
	f.Add([]byte("[network]\nlisten_addrs = [\"nope\"]\n"))
	f.Add([]byte("[timeouts]\ndial = \"fast\"\n"))
	f.Add([]byte("[timeouts]\ndial = \"-1s\"\nshutdown = \"0s\"\n"))
	f.Add([]byte("[identity]\nkey_file = \"\"\n"))
	f.Add([]byte("[network\n"))
	f.Add([]byte(strings.Replace(homedir.DefaultConfig, "]\n\n[timeouts]", "\n[timeouts]", 1)))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := config.Parse("fuzz.toml", b)
		if err != nil {
			if !errors.Is(err, config.ErrInvalid) {
				t.Fatalf("error %q does not wrap ErrInvalid", err)
			}
			return
		}
		if len(c.Network.ListenAddrs) == 0 {
			t.Fatalf("Parse succeeded with no listen addrs: %+v", c)
		}
		v := c
		v.Network.ListenAddrs = append([]string(nil), c.Network.ListenAddrs...)
		if err := v.Validate(); err != nil {
			t.Fatalf("Parse succeeded but Validate fails: %v (%+v)", err, c)
		}
		if !reflect.DeepEqual(v, c) {
			t.Fatalf("Validate changed a parsed config: %+v -> %+v", c, v)
		}
		if c.Identity.KeyFile == "" {
			t.Fatalf("Parse succeeded with an empty key_file")
		}
		for _, d := range []config.Duration{c.Timeouts.Dial, c.Timeouts.StreamOpen, c.Timeouts.TargetDial, c.Timeouts.Shutdown} {
			if d.Duration <= 0 {
				t.Fatalf("Parse succeeded with a non-positive timeout: %+v", c.Timeouts)
			}
		}
	})
}
