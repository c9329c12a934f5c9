package p2phost

import (
	"errors"
	"log/slog"
	"math"
	"testing"

	ma "github.com/multiformats/go-multiaddr"

	"github.com/p2ptun/p2ptun/config"
	"github.com/p2ptun/p2ptun/config/homedir"
	"github.com/p2ptun/p2ptun/p2phost/limits"
)

// FuzzConfigBuildsAHost feeds arbitrary TOML through config.Parse (the
// validation `config check` runs) and, when it passes, builds what the
// values feed: the host (New, as node.New calls it), its keepalive ticker and yamux pings, the
// per-peer stream rate, the resource manager and the relay service's
// options. None may panic, and no validated value may give a ticker of
// zero or less, a rate that is not a positive number, or a byte count
// that overflows. Building a libp2p host per input would be too slow.
// Seeds are in testdata/fuzz/FuzzConfigBuildsAHost.
func FuzzConfigBuildsAHost(f *testing.F) {
	f.Add([]byte(homedir.DefaultConfig))
	f.Add([]byte("[timeouts]\nkeepalive = \"1s\"\n[limits]\npeer_stream_rate = 0.01\n"))
	sk, err := homedir.GenerateKey()
	if err != nil {
		f.Fatal(err)
	}
	log := slog.New(slog.DiscardHandler)
	addrs := []ma.Multiaddr{ma.StringCast("/ip4/127.0.0.1/tcp/0")}
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := config.Parse("fuzz.toml", b)
		if err != nil {
			if !errors.Is(err, config.ErrInvalid) {
				t.Fatalf("error %q does not wrap ErrInvalid", err)
			}
			return
		}
		n, err := New(Config{Key: sk, ListenAddrs: addrs, Timeouts: c.Timeouts, Limits: c.Limits, Relay: &c.Relay, Logger: log})
		if err != nil {
			t.Fatalf("config check passes but the host refuses it: %v", err)
		}
		if interval, timeout := n.keepaliveTimes(); interval <= 0 || timeout <= 0 {
			t.Fatalf("keepalive %v: probe every %v, timeout %v", c.Timeouts.Keepalive, interval, timeout)
		}
		if y := n.yamux(); y.KeepAliveInterval <= 0 || y.ConnectionWriteTimeout <= 0 {
			t.Fatalf("keepalive %v: yamux pings every %v, write timeout %v", c.Timeouts.Keepalive, y.KeepAliveInterval, y.ConnectionWriteTimeout)
		}
		if y := n.yamux(); y.MaxStreamWindowSize != limits.MaxStreamWindow {
			t.Fatalf("yamux grows a stream's window to %d bytes, want limits.MaxStreamWindow (%d)", y.MaxStreamWindowSize, limits.MaxStreamWindow)
		}
		for _, d := range []config.Duration{c.Timeouts.Dial, c.Timeouts.StreamOpen, c.Timeouts.TargetDial, c.Limits.LogInterval, c.Relay.ReservationTTL} {
			if d.Duration <= 0 {
				t.Fatalf("a validated config has a duration of %v: %+v %+v", d, c.Timeouts, c.Limits)
			}
		}
		if r := c.Limits.PeerStreamRate; math.IsNaN(r) || math.IsInf(r, 0) || r <= 0 {
			t.Fatalf("peer_stream_rate %v would turn the limit off", r)
		}
		for _, m := range []int{c.Limits.MemoryMiB, c.Limits.PeerMemoryMiB, c.Relay.DataMiB} {
			if limits.MiB(m) < 0 || limits.MiB(m)>>20 != int64(m) {
				t.Fatalf("%d MiB overflows a byte count", m)
			}
		}
		rm, err := limits.NewResourceManager(c.Limits, nil, n.limited, false)
		if err != nil {
			t.Fatalf("resource manager: %v", err)
		}
		rm.Close()
		if _, err := n.relayOptions(); err != nil {
			t.Fatalf("relay options: %v", err)
		}
	})
}
