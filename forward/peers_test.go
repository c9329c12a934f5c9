package forward

import (
	"slices"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/peerstore"
)

// change is one PeerChanged call.
type change struct {
	p  peer.ID
	up bool
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
	f, opened := startPeers(t, h, Config{
		Peers:       []peer.ID{hA.ID(), hB.ID()},
		PeerChanged: func(p peer.ID, up bool, _ error) { changes <- change{p, up} },
	})
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
