package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/p2ptun/p2ptun/api"
	"github.com/p2ptun/p2ptun/config"
	"github.com/p2ptun/p2ptun/config/homedir"
	"github.com/p2ptun/p2ptun/internal/harness"
	"github.com/p2ptun/p2ptun/internal/logbuf"
	"github.com/p2ptun/p2ptun/internal/testnet"
	"github.com/p2ptun/p2ptun/node"
	"github.com/p2ptun/p2ptun/spec"
)

func TestMain(m *testing.M) {
	// Test daemons report to no service manager the tests may run under.
	os.Unsetenv("NOTIFY_SOCKET")
	goleak.VerifyTestMain(m)
}

// loopback is the config.toml part that keeps a test daemon on loopback
// and off the LAN and the DHT.
const loopback = `[network]
listen_addrs = ["/ip4/127.0.0.1/tcp/0"]
[discovery]
mdns = false
dht = "off"
`

// ephemeral returns the Config of an ephemeral daemon on loopback in home
// ("" for a throwaway one), logging to logs.
func ephemeral(t *testing.T, home string, logs io.Writer) Config {
	t.Helper()
	c := config.Default()
	c.Network.ListenAddrs = []string{"/ip4/127.0.0.1/tcp/0"}
	off := false
	c.Discovery.MDNS, c.Discovery.DHT = &off, "off"
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	return Config{Config: c, Home: home, Ephemeral: true, Logger: slog.New(slog.NewTextHandler(logs, nil))}
}

// withHome returns the Config of a daemon whose home holds an identity and
// a config.toml of loopback plus extra, as the cli builds it.
func withHome(t *testing.T, extra string, logs io.Writer) Config {
	t.Helper()
	home := filepath.Join(testnet.ShortDir(t), "home")
	if _, err := homedir.Init(home); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(home, config.ConfigFile)
	if err := os.WriteFile(path, []byte(loopback+extra), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	return Config{Config: c, Home: home, Logger: slog.New(slog.NewTextHandler(logs, nil))}
}

// running is a daemon that Run serves on another goroutine.
type running struct {
	*Daemon
	api    *api.Client
	cancel context.CancelFunc
	done   chan error
	once   sync.Once
	err    error
}

// stop cancels Run's context and returns what Run returned.
func (r *running) stop() error {
	r.once.Do(func() { r.cancel(); r.err = <-r.done })
	return r.err
}

// start runs New(cfg).Run and waits until the daemon is ready; at cleanup
// it stops it, if the test did not, and checks that Run returned nil.
func start(t *testing.T, cfg Config, logs *logbuf.Buffer) *running {
	t.Helper()
	d, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{Daemon: d, cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- d.Run(ctx) }()
	select {
	case <-d.Ready():
	case err := <-r.done:
		cancel()
		t.Fatalf("Run returned %v before the daemon was ready:\n%s", err, logs)
	case <-time.After(60 * time.Second): // bounds a hang, never the oracle
		cancel()
		t.Fatalf("the daemon was not ready after 60s:\n%s", logs)
	}
	r.api = api.NewClient(d.APISocket())
	t.Cleanup(func() {
		if err := r.stop(); err != nil {
			t.Errorf("Run returned %v on shutdown:\n%s", err, logs)
		}
	})
	return r
}

func gone(t *testing.T, paths ...string) {
	t.Helper()
	for _, p := range paths {
		if _, err := os.Lstat(p); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s is still there after Run returned (%v)", p, err)
		}
	}
}

// TestRunEphemeral: an ephemeral daemon answers on its API, writes the
// ready file, and on cancel returns nil and removes its socket, the ready
// file and its throwaway home.
func TestRunEphemeral(t *testing.T) {
	var logs logbuf.Buffer
	cfg := ephemeral(t, "", &logs)
	cfg.ReadyFile = filepath.Join(testnet.ShortDir(t), "ready.json")
	d := start(t, cfg, &logs)
	ctx := context.Background()

	id, err := d.api.ID(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		ID        string
		Addresses []string
		API       string
	}
	b, err := os.ReadFile(cfg.ReadyFile)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	if doc.ID != id.ID || doc.API != d.APISocket() || len(doc.Addresses) == 0 {
		t.Fatalf("ready file = %s; want the ID %s, its addresses and the API %s", b, id.ID, d.APISocket())
	}
	st, err := d.api.Status(ctx)
	if err != nil || !st.Up() || len(st.Tunnels) != 0 {
		t.Fatalf("status = %+v, %v; want ready with no tunnels", st, err)
	}
	if _, err := d.api.Reload(ctx); !errors.Is(err, node.ErrUsage) {
		t.Fatalf("reload of an ephemeral daemon: %v, want %v", err, node.ErrUsage)
	}

	if err := d.stop(); err != nil {
		t.Fatalf("Run returned %v, want nil:\n%s", err, &logs)
	}
	gone(t, d.APISocket(), cfg.ReadyFile, filepath.Dir(d.APISocket()))
	if _, err := d.api.ID(ctx); !errors.Is(err, api.ErrDaemonNotRunning) {
		t.Fatalf("API after shutdown: %v, want %v", err, api.ErrDaemonNotRunning)
	}
}

// TestHomeLock: a second daemon on the same home is refused with
// homedir.ErrLocked and leaves the first one serving.
func TestHomeLock(t *testing.T) {
	var logs logbuf.Buffer
	cfg := withHome(t, "", &logs)
	first := start(t, cfg, &logs)

	for name, second := range map[string]Config{
		"same home":           cfg,
		"ephemeral, its home": ephemeral(t, cfg.Home, &logs),
	} {
		t.Run(name, func(t *testing.T) {
			second.APISocket = filepath.Join(testnet.ShortDir(t), "other.sock")
			if second.Ephemeral {
				second.APISocket = filepath.Join(cfg.Home, "other.sock")
			}
			d, err := New(second)
			if err != nil {
				t.Fatal(err)
			}
			if err := d.Run(context.Background()); !errors.Is(err, homedir.ErrLocked) {
				t.Fatalf("second daemon's Run = %v, want %v", err, homedir.ErrLocked)
			}
			gone(t, second.APISocket)
		})
	}
	if _, err := first.api.ID(context.Background()); err != nil {
		t.Fatalf("the first daemon stopped answering: %v", err)
	}
}

// TestConfigTunnelsAndReload: the config's tunnels are up when the daemon
// is ready; a reload (SIGHUP's Reload, and the API's) applies the file's
// changes and names the sections that need a restart.
func TestConfigTunnelsAndReload(t *testing.T) {
	var logs logbuf.Buffer
	target := testnet.Serve(t, testnet.Echo)
	tunnel := func(name string) string {
		return "[[listen]]\nname = \"" + name + "\"\nprotocol = \"/x/" + name + "\"\ntarget = \"" + target + "\"\nallow_all = true\n"
	}
	cfg := withHome(t, tunnel("one"), &logs)
	d := start(t, cfg, &logs)
	ctx := context.Background()
	names := func() []string {
		t.Helper()
		st, err := d.api.Status(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var up []string
		for _, tn := range st.Tunnels {
			if tn.State == node.TunnelUp {
				up = append(up, tn.Name)
			}
		}
		slices.Sort(up)
		return up
	}
	if got := names(); !slices.Equal(got, []string{"one"}) {
		t.Fatalf("tunnels up when ready: %v, want [one]", got)
	}

	path := filepath.Join(cfg.Home, config.ConfigFile)
	if err := os.WriteFile(path, []byte(loopback+tunnel("one")+tunnel("two")), 0o600); err != nil {
		t.Fatal(err)
	}
	d.Reload()
	harness.UntilAlive(t, nil, &logs, 30*time.Second, "tunnels [one two] up after Reload", func() bool {
		return slices.Equal(names(), []string{"one", "two"})
	})

	if err := os.WriteFile(path, []byte(loopback+"[timeouts]\ndial = \"7s\"\n"+tunnel("two")), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := d.api.Reload(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(out.Removed, []string{"one"}) || len(out.Added) != 0 || !slices.Equal(out.NeedsRestart, []string{"timeouts"}) {
		t.Fatalf("reload = %+v; want one removed and timeouts needing a restart", out)
	}
	if got := names(); !slices.Equal(got, []string{"two"}) {
		t.Fatalf("tunnels up after the API's reload: %v, want [two]", got)
	}

	// A file that does not parse changes nothing.
	if err := os.WriteFile(path, []byte("[[listen]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := d.api.Reload(ctx); !errors.Is(err, config.ErrInvalid) {
		t.Fatalf("reload of a broken file: %v, want %v", err, config.ErrInvalid)
	}
	if got := names(); !slices.Equal(got, []string{"two"}) {
		t.Fatalf("tunnels up after a failed reload: %v, want [two]", got)
	}
}

// TestRunDrains: on cancel the daemon stops answering its API, but a live
// tunnelled connection keeps flowing until it ends; then Run returns nil,
// without waiting out timeouts.drain.
func TestRunDrains(t *testing.T) {
	var logs logbuf.Buffer
	target := testnet.Serve(t, testnet.Echo)
	far := withHome(t, "[timeouts]\ndrain = \"10m\"\n[[listen]]\nprotocol = \"/x/drain\"\ntarget = \""+target+"\"\nallow_all = true\n", &logs)
	a := start(t, far, &logs)
	b := start(t, ephemeral(t, "", &logs), &logs)
	ctx := context.Background()
	id, err := a.api.ID(ctx)
	if err != nil {
		t.Fatal(err)
	}
	l, err := b.api.Forward(ctx, api.ForwardRequest{Protocol: "/x/drain", ListenAddress: "127.0.0.1:0", Peer: id.Addresses[0]})
	if err != nil {
		t.Fatal(err)
	}
	m, err := spec.ParseAddr(l.ListenAddress)
	if err != nil {
		t.Fatal(err)
	}
	host, _ := m.ValueForProtocol(4) // ip4
	port, _ := m.ValueForProtocol(6) // tcp
	c, err := net.Dial("tcp", net.JoinHostPort(host, port))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	harness.Echoes(t, c, "before")

	a.cancel()
	// The API closes first; the node drains after it.
	harness.Until(t, 30*time.Second, "API closed after cancel", func() bool {
		_, err := a.api.ID(ctx)
		return errors.Is(err, api.ErrDaemonNotRunning)
	})
	harness.Echoes(t, c, "while draining")
	select {
	case err := <-a.done:
		t.Fatalf("Run returned %v while a stream was live", err)
	default:
	}
	c.Close()
	select {
	case err := <-a.done:
		a.once.Do(func() { a.err = err })
		if err != nil {
			t.Fatalf("Run returned %v, want nil:\n%s", err, &logs)
		}
	case <-time.After(time.Minute):
		t.Fatalf("Run did not return after the last stream ended:\n%s", &logs)
	}
	gone(t, filepath.Join(far.Home, config.APISocket))
}

// busyForward is a [[forward]] table, "busy", that cannot start: its
// local address is taken until the test ends.
func busyForward(t *testing.T) string {
	t.Helper()
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { busy.Close() })
	return "[[forward]]\nname = \"busy\"\nprotocol = \"/x/busy\"\nlisten = \"" + busy.Addr().String() + "\"\npeer = \"" +
		harness.NewPeerID(t) + "\"\nlazy = true\n"
}

// TestStrictFailsCleanly: with Strict, a config tunnel that does not start
// makes Run return its error, with nothing left behind: no socket, no
// ready file, and the home free for the next daemon.
func TestStrictFailsCleanly(t *testing.T) {
	var logs logbuf.Buffer
	cfg := withHome(t, busyForward(t), &logs)
	cfg.Strict = true
	cfg.ReadyFile = filepath.Join(testnet.ShortDir(t), "ready.json")
	d, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Run(context.Background()); !errors.Is(err, node.ErrAddrInUse) {
		t.Fatalf("Run = %v, want %v:\n%s", err, node.ErrAddrInUse, &logs)
	}
	gone(t, filepath.Join(cfg.Home, config.APISocket), cfg.ReadyFile)

	cfg.Strict = false
	s := start(t, cfg, &logs)
	st, err := s.api.Status(context.Background())
	if err != nil || len(st.Tunnels) != 1 || st.Tunnels[0].State != node.TunnelFailed {
		t.Fatalf("status without Strict = %+v, %v; want the tunnel failed and the daemon up", st, err)
	}
}
