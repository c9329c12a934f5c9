package forward

import (
	"log/slog"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/peerstore"

	"github.com/p2ptun/p2ptun/forward/balance"
	"github.com/p2ptun/p2ptun/internal/harness"
	"github.com/p2ptun/p2ptun/internal/logbuf"
	"github.com/p2ptun/p2ptun/registry"
	seam "github.com/p2ptun/p2ptun/tunnel"
)

// TestForwardBalanceRTT, on real hosts: an rtt forward with no RTT
// source of its own reads the host's peerstore, which the daemon's
// keepalive fills with each ping (node's balance tests check that it
// pings a forward's peers). Loopback peers answer alike, so the test
// records the RTTs itself, as the keepalive does: the connections go to
// the peer whose RTT is lower, the peers' states (ls --json RTTMillis)
// report what the policy used, and when the other becomes the faster
// one, new connections follow it.
func TestForwardBalanceRTT(t *testing.T) {
	hA := newHost(t, newKey(t), "/ip4/127.0.0.1/tcp/0")
	hB := newHost(t, newKey(t), "/ip4/127.0.0.1/tcp/0")
	echoPeer(hA)
	echoPeer(hB)
	h := newHost(t, newKey(t), "/ip4/127.0.0.1/tcp/0")
	h.Peerstore().AddAddr(hA.ID(), hA.Addrs()[0], peerstore.PermanentAddrTTL)
	h.Peerstore().AddAddr(hB.ID(), hB.Addrs()[0], peerstore.PermanentAddrTTL)
	f, opened := startPeers(t, h, Config{Peers: []peer.ID{hA.ID(), hB.ID()}, Balance: balance.RTT})
	harness.Until(t, 30*time.Second, "both peers up", func() bool {
		st := f.Peers()
		return len(st) == 2 && st[0].Up && st[1].Up
	})

	// The first measurement is taken as it is; later ones are averaged
	// in (an EWMA), so a large one makes a fast peer the slower.
	ps := h.Peerstore()
	ps.RecordLatency(hA.ID(), 50*time.Millisecond)
	ps.RecordLatency(hB.ID(), time.Millisecond)
	via := func(fast, slow peer.ID) {
		t.Helper()
		st := f.Peers()
		rtt := map[string]time.Duration{st[0].Peer: st[0].RTT, st[1].Peer: st[1].RTT}
		if rtt[fast.String()] <= 0 || rtt[fast.String()] >= rtt[slow.String()] {
			t.Fatalf("peers' RTTs %v, want %s's measured and lower than %s's", rtt, fast, slow)
		}
		for range 3 {
			if err := client(f, "ping"); err != nil {
				t.Fatalf("client: %v", err)
			}
			if s := <-opened; s.Peer != fast.String() {
				t.Fatalf("stream went to %s, want %s, the peer with the lower RTT (%v)", s.Peer, fast, rtt)
			}
		}
	}
	via(hB.ID(), hA.ID())

	ps.RecordLatency(hB.ID(), time.Second) // B now averages ~101 ms
	via(hA.ID(), hB.ID())
}

// startPeers starts a forward from h with cfg, to its Peers, on a
// loopback port (redialling a peer 10-50 ms after a failed dial), and
// returns it with the stream records it opens. It is closed at cleanup.
func startPeers(t *testing.T, h host.Host, cfg Config) (*Forward, <-chan registry.StreamInfo) {
	t.Helper()
	opened := make(chan registry.StreamInfo, 16)
	reg := &registry.Streams{}
	reg.SetHooks(registry.Hooks{Opened: func(s registry.StreamInfo) { opened <- s }})
	cfg.Side = seam.Side{Protocol: proto, Streams: reg, Logger: slog.New(slog.NewTextHandler(&logbuf.Buffer{}, nil))}
	cfg.RedialMin, cfg.RedialMax = 10*time.Millisecond, 50*time.Millisecond
	return runForward(t, h, cfg), opened
}
