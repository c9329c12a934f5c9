package forward

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/peerstore"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/p2ptun/p2ptun/internal/harness"
	"github.com/p2ptun/p2ptun/internal/logbuf"
	"github.com/p2ptun/p2ptun/peerdial"
	"github.com/p2ptun/p2ptun/registry"
	seam "github.com/p2ptun/p2ptun/tunnel"
)

// TestOrder: each policy orders the peers that are up its own way, and
// puts the peers that are down last, in the order given.
func TestOrder(t *testing.T) {
	ms := time.Millisecond
	tests := []struct {
		name  string
		b     Balance
		peers []health
		turn  uint64
		want  []int
	}{
		{"failover: the first up", BalanceFailover, []health{{up: true}, {up: true}, {up: true}}, 5, []int{0, 1, 2}},
		{"failover: skips the down", BalanceFailover, []health{{}, {up: true}, {}, {up: true}}, 0, []int{1, 3, 0, 2}},
		{"failover: none up", BalanceFailover, []health{{}, {}}, 0, []int{0, 1}},
		{"round-robin: turn 0", BalanceRoundRobin, []health{{up: true}, {up: true}, {up: true}}, 0, []int{0, 1, 2}},
		{"round-robin: turn 1", BalanceRoundRobin, []health{{up: true}, {up: true}, {up: true}}, 1, []int{1, 2, 0}},
		{"round-robin: turn 5", BalanceRoundRobin, []health{{up: true}, {up: true}, {up: true}}, 5, []int{2, 0, 1}},
		{"round-robin: among the up", BalanceRoundRobin, []health{{up: true}, {}, {up: true}}, 1, []int{2, 0, 1}},
		{"round-robin: none up", BalanceRoundRobin, []health{{}, {}}, 3, []int{0, 1}},
		{"rtt: lowest first", BalanceRTT, []health{{up: true, rtt: 9 * ms}, {up: true, rtt: 2 * ms}, {up: true, rtt: 5 * ms}}, 0, []int{1, 2, 0}},
		{"rtt: unmeasured after", BalanceRTT, []health{{up: true}, {up: true, rtt: 7 * ms}, {up: true}}, 0, []int{1, 0, 2}},
		{"rtt: a down peer however fast", BalanceRTT, []health{{rtt: ms}, {up: true, rtt: 8 * ms}}, 0, []int{1, 0}},
		{"rtt: ties in the order given", BalanceRTT, []health{{up: true, rtt: ms}, {up: true, rtt: ms}}, 0, []int{0, 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := order(tt.b, tt.peers, tt.turn); !slices.Equal(got, tt.want) {
				t.Errorf("order(%s, %+v, %d) = %v, want %v", tt.b, tt.peers, tt.turn, got, tt.want)
			}
		})
	}
}

// change is one PeerChanged call.
type change struct {
	p  peer.ID
	up bool
}

// TestPeerSetOpen: a connection whose stream open fails on the peer the
// policy picked goes to the next one; the failed peer is down (and told
// so once) and comes last until a stream to it opens again.
func TestPeerSetOpen(t *testing.T) {
	a, b, c := harness.NewPeer(t), harness.NewPeer(t), harness.NewPeer(t)
	var changes []change
	cfg := Config{
		Peers: []peer.ID{a, b, c}, Balance: BalanceRoundRobin, RedialMin: time.Hour, RedialMax: time.Hour,
		PeerChanged: func(p peer.ID, up bool, _ error) { changes = append(changes, change{p, up}) },
	}
	ps := newPeerSet(nil, &cfg)
	down := map[peer.ID]bool{a: true}
	var tried []peer.ID
	try := func(_ context.Context, p peer.ID, _ *peerdial.Gate) (network.Stream, error) {
		tried = append(tried, p)
		if down[p] {
			return nil, fmt.Errorf("%w: %s", peerdial.ErrUnreachable, p)
		}
		return nil, nil
	}
	open := func(want ...peer.ID) {
		t.Helper()
		tried = nil
		if _, err := ps.open(t.Context(), try); err != nil {
			t.Fatalf("open: %v", err)
		}
		if !slices.Equal(tried, want) {
			t.Errorf("tried %v, want %v", tried, want)
		}
	}
	open(a, b) // turn 0: a first, down, then b
	open(c)    // turn 1 among b and c: c
	open(b)    // turn 2: b
	if want := []change{{a, false}}; !slices.Equal(changes, want) {
		t.Errorf("changes %v, want %v", changes, want)
	}
	st := ps.states()
	if st[0].Up || !errors.Is(ps.peers[0].err, peerdial.ErrUnreachable) || st[0].Error == "" || !st[1].Up || !st[2].Up {
		t.Errorf("states %+v, want a down with its error, b and c up", st)
	}

	// Every peer refuses: the connection fails with the last error.
	down[b], down[c] = true, true
	tried = nil
	if _, err := ps.open(t.Context(), try); !errors.Is(err, peerdial.ErrUnreachable) {
		t.Errorf("open with every peer down: %v, want ErrUnreachable", err)
	}
	// a comes back: a stream to it opens, and it is up again.
	down[a] = false
	open(a) // b and c are down now, a is tried first as the first given
	if got := changes[len(changes)-1]; got != (change{a, true}) {
		t.Errorf("last change %v, want a up", got)
	}
}

// TestForwardSeveralPeers, on real hosts: a failover forward sends its
// connections to the first peer; when that peer's host goes away, the
// forward marks it down and new connections go to the second; when the
// first comes back on the same identity and port, the forward redials it
// and it takes over again. Each stream record names its peer.
func TestForwardSeveralPeers(t *testing.T) {
	keyA := newKey(t)
	hA := newHost(t, keyA, "/ip4/127.0.0.1/tcp/0")
	hB := newHost(t, newKey(t), "/ip4/127.0.0.1/tcp/0")
	echoPeer(hA)
	echoPeer(hB)
	addrA := hA.Addrs()[0]

	h := newHost(t, newKey(t), "/ip4/127.0.0.1/tcp/0")
	h.Peerstore().AddAddr(hA.ID(), addrA, peerstore.PermanentAddrTTL)
	h.Peerstore().AddAddr(hB.ID(), hB.Addrs()[0], peerstore.PermanentAddrTTL)
	changes := make(chan change, 16)
	reg := &registry.Streams{}
	opened := make(chan registry.StreamInfo, 16)
	reg.SetHooks(registry.Hooks{Opened: func(s registry.StreamInfo) { opened <- s }})
	f, err := New(h, Config{
		Side:       seam.Side{Protocol: proto, Streams: reg, Logger: slog.New(slog.NewTextHandler(&logbuf.Buffer{}, nil))},
		ListenAddr: ma.StringCast("/ip4/127.0.0.1/tcp/0"),
		Peers:      []peer.ID{hA.ID(), hB.ID()},
		RedialMin:  10 * time.Millisecond, RedialMax: 50 * time.Millisecond,
		PeerChanged: func(p peer.ID, up bool, _ error) { changes <- change{p, up} },
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	// Not connected at the start: both are down until their watchers dial.
	waitChange(t, changes, change{hA.ID(), false}, change{hB.ID(), false}, change{hA.ID(), true}, change{hB.ID(), true})

	via := func(want peer.ID) {
		t.Helper()
		if err := client(f, "ping"); err != nil {
			t.Fatalf("client: %v", err)
		}
		if s := <-opened; s.Peer != want.String() || s.TargetAddress != "/p2p/"+want.String() {
			t.Errorf("stream went to %s (%s), want %s", s.Peer, s.TargetAddress, want)
		}
	}
	via(hA.ID())
	via(hA.ID())

	hA.Close()
	waitChange(t, changes, change{hA.ID(), false})
	via(hB.ID())
	if st := f.Peers(); st[0].Up || st[0].Error == "" || !st[1].Up {
		t.Errorf("peers %+v, want the first down with why, the second up", st)
	}

	hA2 := newHost(t, keyA, addrA.String())
	echoPeer(hA2)
	waitChange(t, changes, change{hA.ID(), true})
	via(hA.ID())
}

// waitChange waits for the changes want, in any order (other changes may
// come between them).
func waitChange(t *testing.T, changes <-chan change, want ...change) {
	t.Helper()
	timeout := time.After(30 * time.Second)
	for len(want) > 0 {
		select {
		case c := <-changes:
			if i := slices.Index(want, c); i >= 0 {
				want = slices.Delete(want, i, i+1)
			}
		case <-timeout:
			t.Fatalf("no peer changes %v within 30s", want)
		}
	}
}
