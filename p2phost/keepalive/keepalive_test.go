package keepalive

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"go.uber.org/goleak"

	"github.com/p2ptun/p2ptun/internal/logbuf"
	"github.com/p2ptun/p2ptun/internal/testnet"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// The keepalive's probe only pings connections that exist. Right after it
// cuts a peer off, the peer's streams are still listed for a moment, and
// the next round probes it again: a ping that dialed would reconnect to
// the peer just cut off or, across a partition, leave go-libp2p's dial
// backoff on its address, refusing the forward's own re-dial for 5s once
// the path is back.
func TestProbeDoesNotDial(t *testing.T) {
	a, b := testnet.Host(t), testnet.Host(t)
	a.Peerstore().AddAddrs(b.ID(), b.Addrs(), time.Hour)
	logs := &logbuf.Buffer{}
	cfg := Config{Host: a, Timeout: 5 * time.Second, Logger: slog.New(slog.NewTextHandler(logs, nil)),
		Unopened: func(peer.ID) { t.Error("the probe tried to open a stream to a peer it had no connection to") }}
	probe(context.Background(), cfg, b.ID())
	if c := a.Network().Connectedness(b.ID()); c != network.NotConnected {
		t.Fatalf("after probing a peer it had no connection to, a is %v to it; want NotConnected: the probe must not dial", c)
	}
	if strings.Contains(logs.String(), "no ping within the keepalive") {
		t.Errorf("a peer with no connection counted as silent:\n%s", logs)
	}
}

// Run pings each listed peer once a round, however often it is listed,
// records its RTT, and returns when its context ends.
func TestRunRecordsRTTAndEndsWithItsContext(t *testing.T) {
	a, b := testnet.Host(t), testnet.Host(t)
	if err := a.Connect(context.Background(), peer.AddrInfo{ID: b.ID(), Addrs: b.Addrs()}); err != nil {
		t.Fatal(err)
	}
	rounds := make(chan struct{})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		Run(ctx, Config{Host: a, Interval: time.Millisecond, Timeout: 30 * time.Second,
			Peers: func() []peer.ID {
				select {
				case rounds <- struct{}{}:
				case <-ctx.Done():
				}
				return []peer.ID{b.ID(), b.ID()}
			}})
	}()
	<-rounds // the first round
	<-rounds // the second, after the first's probes returned
	if a.Peerstore().LatencyEWMA(b.ID()) <= 0 {
		t.Error("a round of the keepalive recorded no RTT for a connected peer")
	}
	cancel()
	<-done
}

func TestPingAndPath(t *testing.T) {
	a, b := testnet.Host(t), testnet.Host(t)
	if got := Path(a, b.ID()); got != "not connected" {
		t.Errorf("Path before connecting = %q, want \"not connected\"", got)
	}
	if err := a.Connect(context.Background(), peer.AddrInfo{ID: b.ID(), Addrs: b.Addrs()}); err != nil {
		t.Fatal(err)
	}
	res, err := Ping(context.Background(), a, b.ID(), 3, 30*time.Second)
	if err != nil || len(res) != 3 {
		t.Fatalf("Ping: %+v, %v; want 3 round trips", res, err)
	}
	for _, r := range res {
		if r.Path != "direct" || r.RTT <= 0 {
			t.Errorf("ping result %+v, want a direct path and a positive RTT", r)
		}
	}
}
