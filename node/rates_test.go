package node

import (
	"context"
	"io"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/peerstore"
	"github.com/libp2p/go-libp2p/core/protocol"

	"github.com/p2ptun/p2ptun/config"
	"github.com/p2ptun/p2ptun/refusal"
	"github.com/p2ptun/p2ptun/spec"
)

// TestDefaultRatesPerPeerKind: with the default limits, a peer the
// listener names (--allow) may open 1,500 streams at once, more than the
// 1,000 that the tight default lets any peer open at once (pgbench -C and
// other connection-per-request clients failed on it); a peer let in by
// --allow-all still gets the tight rate. The node's clock stands still,
// so no bucket refills while the test runs: what passes is the bursts
// alone, however long the streams take (on the old default of 100/s,
// burst 1,000 for every peer, the named peer is refused at its 1,001st).
func TestDefaultRatesPerPeerKind(t *testing.T) {
	const named, open = protocol.ID("/x/named"), protocol.ID("/x/open")
	d := config.Default().Limits
	frozen := time.Now()
	victim := newNodeWith(t, func(o *Options) { o.Limits = d; o.Now = func() time.Time { return frozen } })
	caller := newNode(t)
	target, _ := countedServer(t, echo)
	ctx := context.Background()
	if _, err := victim.listenReq(ctx, spec.Request{Protocol: string(named), Target: target, Allow: []string{caller.id()}}); err != nil {
		t.Fatal(err)
	}
	if _, err := victim.listenReq(ctx, spec.Request{Protocol: string(open), Target: target, AllowAll: true}); err != nil {
		t.Fatal(err)
	}
	h, vid := caller.Host(), victim.Host().ID()
	h.Peerstore().AddAddrs(vid, victim.Host().Addrs(), peerstore.PermanentAddrTTL)
	cctx, cancel := context.WithTimeout(ctx, hangGuard)
	defer cancel()
	if err := h.Connect(cctx, peer.AddrInfo{ID: vid}); err != nil {
		t.Fatal(err)
	}

	// open streams on proto until n are done or one is refused; it
	// returns how many were bridged, and the refusal.
	burst := func(proto protocol.ID, n int) (bridged int64, refused *refusal.Error) {
		var (
			next, ok atomic.Int64
			once     sync.Once
			stop     = make(chan struct{})
			wg       sync.WaitGroup
		)
		for range 32 {
			wg.Go(func() {
				buf := make([]byte, 1)
				for next.Add(1) <= int64(n) {
					select {
					case <-stop:
						return
					default:
					}
					s, err := echoStream(h, vid, proto, buf)
					if err == nil {
						_ = s.Close()
					}
					switch r := refusal.Of(err); {
					case err == nil:
						ok.Add(1)
					case r != nil:
						once.Do(func() { refused = r; close(stop) })
						return
					default:
						t.Errorf("stream %d on %s: %v", next.Load(), proto, err)
						return
					}
				}
			})
		}
		wg.Wait()
		return ok.Load(), refused
	}

	const namedStreams = 1500 // above the tight burst, below the named one
	if namedStreams <= d.PeerStreamBurst || namedStreams >= d.NamedPeerStreamBurst {
		t.Fatalf("defaults changed: %d streams no longer sit between the bursts %d and %d", namedStreams, d.PeerStreamBurst, d.NamedPeerStreamBurst)
	}
	if n, r := burst(named, namedStreams); r != nil || n != namedStreams {
		t.Errorf("named peer: %d of %d streams bridged, refusal %v; want all", n, namedStreams, r)
	}

	// The same peer, unknown to an --allow-all listener: refused once
	// the tight bucket is empty, exactly after its burst.
	n, r := burst(open, 100_000)
	if r == nil || r.Cause != refusal.RateLimited {
		t.Fatalf("allow-all listener: %d streams bridged, refusal %v; want rate_limited", n, r)
	}
	if n != int64(d.PeerStreamBurst) {
		t.Errorf("allow-all listener bridged %d streams before refusing, want its burst %d", n, d.PeerStreamBurst)
	}
}

// echoStream opens a stream from h to proto on peer to, sends one byte and
// reads its echo into buf (one byte long), all within hangGuard. On
// success the stream is the caller's, with its deadline cleared; on
// failure it has been reset.
func echoStream(h host.Host, to peer.ID, proto protocol.ID, buf []byte) (network.Stream, error) {
	ctx, cancel := context.WithTimeout(context.Background(), hangGuard)
	s, err := h.NewStream(ctx, to, proto)
	cancel()
	if err != nil {
		return nil, err
	}
	_ = s.SetDeadline(time.Now().Add(hangGuard))
	if _, err = s.Write([]byte{'x'}); err == nil {
		_, err = io.ReadFull(s, buf)
	}
	if err != nil {
		_ = s.Reset()
		return nil, err
	}
	_ = s.SetDeadline(time.Time{})
	return s, nil
}
