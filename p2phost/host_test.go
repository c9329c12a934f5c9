package p2phost

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
	"go.uber.org/goleak"

	"github.com/p2ptun/p2ptun/config"
	"github.com/p2ptun/p2ptun/config/homedir"
	"github.com/p2ptun/p2ptun/internal/logbuf"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

type testHost struct {
	*Host
	logs *logbuf.Buffer
}

// newHost starts a host on loopback with short timeouts and a log buffer,
// after tweak (if not nil) has adjusted its config.
func newHost(t *testing.T, tweak func(*Config)) testHost {
	t.Helper()
	sk, err := homedir.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	logs := &logbuf.Buffer{}
	cfg := Config{
		Key:         sk,
		ListenAddrs: []ma.Multiaddr{ma.StringCast("/ip4/127.0.0.1/tcp/0")},
		Timeouts:    config.Timeouts{Dial: config.D(5 * time.Second), StreamOpen: config.D(5 * time.Second)},
		UserAgent:   "p2ptun/test",
		Logger:      slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	if tweak != nil {
		tweak(&cfg)
	}
	h, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := h.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := h.Close(); err != nil {
			t.Errorf("closing host: %v", err)
		}
	})
	return testHost{h, logs}
}

func addrInfo(h testHost) peer.AddrInfo {
	return peer.AddrInfo{ID: h.Host.Host().ID(), Addrs: h.Host.Host().Addrs()}
}

func TestBrokenPeerCacheIsIgnored(t *testing.T) {
	cache := t.TempDir() + "/peers.json"
	if err := os.WriteFile(cache, []byte("{not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	h := newHost(t, func(c *Config) { c.PeerCache = cache })
	if !strings.Contains(h.logs.String(), "ignoring the peer address cache") {
		t.Fatalf("a broken cache should be logged and ignored:\n%s", h.logs)
	}
}

func TestPingMeasuresADirectPath(t *testing.T) {
	a, b := newHost(t, nil), newHost(t, nil)
	bi := addrInfo(b)
	if err := a.host.Connect(context.Background(), bi); err != nil {
		t.Fatal(err)
	}
	res, err := a.Ping(context.Background(), bi.ID, 2)
	if err != nil || len(res) != 2 {
		t.Fatalf("ping: %+v, %v", res, err)
	}
	for _, r := range res {
		if r.Path != "direct" || r.RTT <= 0 {
			t.Fatalf("ping result %+v, want a direct path and a positive RTT", r)
		}
	}
	if a.RTT(bi.ID) <= 0 {
		t.Fatal("ping did not record an RTT for the peer")
	}
}

func TestConnManagerWaterMarks(t *testing.T) {
	sk, err := homedir.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	addrs := []ma.Multiaddr{ma.StringCast("/ip4/127.0.0.1/tcp/0")}
	h, err := New(Config{Key: sk, ListenAddrs: addrs})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := h.Config().ConnManager, (ConnManager{Low: 160, High: 192, GracePeriod: time.Minute}); got != want {
		t.Errorf("default connection manager = %+v, want go-libp2p's %+v", got, want)
	}
	for _, bad := range []ConnManager{{Low: 10, High: 5}, {Low: -1}, {GracePeriod: -time.Second}} {
		if _, err := New(Config{Key: sk, ListenAddrs: addrs, ConnManager: bad}); !errors.Is(err, ErrUsage) {
			t.Errorf("connection manager %+v: err = %v, want ErrUsage", bad, err)
		}
	}
}

// A host that cannot be built says so in its own name: it is not a node.
func TestNewWithoutKeyOrAddressesNamesTheHost(t *testing.T) {
	sk, err := homedir.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	for name, cfg := range map[string]Config{
		"no key":       {ListenAddrs: []ma.Multiaddr{ma.StringCast("/ip4/127.0.0.1/tcp/0")}},
		"no addresses": {Key: sk},
	} {
		if _, err := New(cfg); err == nil || !strings.HasPrefix(err.Error(), "p2phost: ") {
			t.Errorf("%s: New = %v, want an error that starts with \"p2phost: \"", name, err)
		}
	}
}
