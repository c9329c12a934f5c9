package balance

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"go.uber.org/goleak"

	"github.com/p2ptun/p2ptun/internal/harness"
	"github.com/p2ptun/p2ptun/internal/testnet"
	"github.com/p2ptun/p2ptun/peerdial"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// TestOrder: each policy orders the peers that are up its own way, and
// puts the peers that are down last, in the order given.
func TestOrder(t *testing.T) {
	ms := time.Millisecond
	tests := []struct {
		name  string
		b     Policy
		peers []health
		turn  uint64
		want  []int
	}{
		{"failover: the first up", Failover, []health{{up: true}, {up: true}, {up: true}}, 5, []int{0, 1, 2}},
		{"failover: skips the down", Failover, []health{{}, {up: true}, {}, {up: true}}, 0, []int{1, 3, 0, 2}},
		{"failover: none up", Failover, []health{{}, {}}, 0, []int{0, 1}},
		{"round-robin: turn 0", RoundRobin, []health{{up: true}, {up: true}, {up: true}}, 0, []int{0, 1, 2}},
		{"round-robin: turn 1", RoundRobin, []health{{up: true}, {up: true}, {up: true}}, 1, []int{1, 2, 0}},
		{"round-robin: turn 5", RoundRobin, []health{{up: true}, {up: true}, {up: true}}, 5, []int{2, 0, 1}},
		{"round-robin: among the up", RoundRobin, []health{{up: true}, {}, {up: true}}, 1, []int{2, 0, 1}},
		{"round-robin: none up", RoundRobin, []health{{}, {}}, 3, []int{0, 1}},
		{"rtt: lowest first", RTT, []health{{up: true, rtt: 9 * ms}, {up: true, rtt: 2 * ms}, {up: true, rtt: 5 * ms}}, 0, []int{1, 2, 0}},
		{"rtt: unmeasured after", RTT, []health{{up: true}, {up: true, rtt: 7 * ms}, {up: true}}, 0, []int{1, 0, 2}},
		{"rtt: a down peer however fast", RTT, []health{{rtt: ms}, {up: true, rtt: 8 * ms}}, 0, []int{1, 0}},
		{"rtt: ties in the order given", RTT, []health{{up: true, rtt: ms}, {up: true, rtt: ms}}, 0, []int{0, 1}},
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

// TestSetOpen: a connection whose stream open fails on the peer the
// policy picked goes to the next one; the failed peer is down (and told
// so once) and comes last until a stream to it opens again.
func TestSetOpen(t *testing.T) {
	a, b, c := harness.NewPeer(t), harness.NewPeer(t), harness.NewPeer(t)
	var changes []change
	ps := New(nil, Config{
		Peers: []peer.ID{a, b, c}, Policy: RoundRobin, RedialMin: time.Hour, RedialMax: time.Hour,
		Changed: func(p peer.ID, up bool, _ error) { changes = append(changes, change{p, up}) },
	})
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
		if _, err := ps.Open(t.Context(), try); err != nil {
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
	st := ps.States()
	if st[0].Up || !errors.Is(ps.peers[0].err, peerdial.ErrUnreachable) || st[0].Error == "" || !st[1].Up || !st[2].Up {
		t.Errorf("states %+v, want a down with its error, b and c up", st)
	}

	// Every peer refuses: the connection fails with the last error.
	down[b], down[c] = true, true
	tried = nil
	if _, err := ps.Open(t.Context(), try); !errors.Is(err, peerdial.ErrUnreachable) {
		t.Errorf("open with every peer down: %v, want peerdial.ErrUnreachable", err)
	}
	// a comes back: a stream to it opens, and it is up again.
	down[a] = false
	open(a) // b and c are down now, a is tried first as the first given
	if got := changes[len(changes)-1]; got != (change{a, true}) {
		t.Errorf("last change %v, want a up", got)
	}
}

// owner runs a Set's goroutines for a test and waits for them at its end.
type owner struct {
	ctx context.Context
	wg  sync.WaitGroup
}

func newOwner(t *testing.T) *owner {
	ctx, cancel := context.WithCancel(context.Background())
	o := &owner{ctx: ctx}
	t.Cleanup(func() { cancel(); o.wg.Wait() })
	return o
}

func (o *owner) Context() context.Context { return o.ctx }
func (o *owner) Go(fn func()) bool        { o.wg.Go(fn); return true }

// TestSetPeerThatRefusedStaysDown: a peer that stays connected but
// refused the protocol is not brought back up by its watcher because it
// is still connected (it would take the next client first and refuse it
// again, every hold-off); it comes back up once identify says it serves
// the protocol again.
func TestSetPeerThatRefusedStaysDown(t *testing.T) {
	const proto = "/x/refused"
	h, b := testnet.Host(t), testnet.Host(t)
	if err := h.Connect(t.Context(), peer.AddrInfo{ID: b.ID(), Addrs: b.Addrs()}); err != nil {
		t.Fatal(err)
	}
	other := harness.NewPeer(t)
	changes := make(chan change, 64)
	ps := New(h, Config{
		Peers: []peer.ID{b.ID(), other}, Protocol: proto, RedialMin: 5 * time.Millisecond, RedialMax: 5 * time.Millisecond,
		Changed: func(p peer.ID, up bool, _ error) {
			if p == b.ID() {
				changes <- change{p, up}
			}
		},
	})
	dials := make(chan struct{}, 1)
	connect := func(_ context.Context, p peer.ID, _ *peerdial.Gate) error {
		if p == b.ID() {
			select {
			case dials <- struct{}{}:
			default:
			}
		}
		return nil // b is connected; other is not, and stays down
	}
	if err := ps.Start(newOwner(t), connect); err != nil {
		t.Fatal(err)
	}
	try := func(_ context.Context, p peer.ID, _ *peerdial.Gate) (network.Stream, error) {
		if p == b.ID() {
			return nil, fmt.Errorf("%s: %w %s", p, peerdial.ErrNoListener, proto)
		}
		return nil, nil
	}
	if _, err := ps.Open(t.Context(), try); err != nil {
		t.Fatal(err)
	}
	if c := <-changes; c != (change{b.ID(), false}) {
		t.Fatalf("change %v, want b down", c)
	}
	// Its watcher dials it again and again (it is connected): it stays
	// down all the same.
	for range 5 {
		select {
		case <-dials:
		case c := <-changes:
			t.Fatalf("change %v after b refused the protocol, want none until it serves it", c)
		case <-time.After(30 * time.Second):
			t.Fatal("b's watcher did not dial it within 30s")
		}
	}
	select {
	case c := <-changes:
		t.Fatalf("change %v after b refused the protocol, want none until it serves it", c)
	default:
	}
	if st := ps.States(); st[0].Up {
		t.Fatalf("b up again after refusing %s: %+v", proto, st)
	}

	// b serves the protocol: identify tells h, and b is up.
	b.SetStreamHandler(proto, func(s network.Stream) { _ = s.Reset() })
	select {
	case c := <-changes:
		if c != (change{b.ID(), true}) {
			t.Fatalf("change %v, want b up", c)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("b not up 30s after it began serving the protocol")
	}
}
