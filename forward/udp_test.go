package forward

import (
	"bytes"
	"log/slog"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/peerstore"
	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"

	"github.com/p2ptun/p2ptun/internal/harness"
	"github.com/p2ptun/p2ptun/internal/logbuf"
	"github.com/p2ptun/p2ptun/registry"
	"github.com/p2ptun/p2ptun/streams"
	seam "github.com/p2ptun/p2ptun/tunnel"
)

// echoes sends msg on c and checks that it comes back as one datagram.
func echoes(t *testing.T, c *net.UDPConn, msg []byte) {
	t.Helper()
	if _, err := c.Write(msg); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 2048)
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	n, err := c.Read(buf)
	if err != nil || !bytes.Equal(buf[:n], msg) {
		t.Fatalf("echo of %q = %q, %v", msg, buf[:n], err)
	}
}

func (k *udpKind) flowCount() int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return len(k.flows)
}

// queued is how many datagrams the flows hold in their queues.
func (k *udpKind) queued() int {
	k.mu.Lock()
	defer k.mu.Unlock()
	n := 0
	for _, fl := range k.flows {
		n += len(fl.q)
	}
	return n
}

func TestUDPForwardFlowsDropsAndStop(t *testing.T) {
	// A peer that echoes its streams echoes the frames, so each datagram
	// comes back as it went.
	b := newHost(t, newKey(t), "/ip4/127.0.0.1/tcp/0")
	echoPeer(b)
	h := newHost(t, newKey(t), "/ip4/127.0.0.1/tcp/0")
	h.Peerstore().AddAddr(b.ID(), b.Addrs()[0], peerstore.PermanentAddrTTL)
	var tooLarge atomic.Int64
	var reg registry.Streams
	f, err := New(h, Config{
		Side: seam.Side{Protocol: proto, Streams: &reg, Logger: slog.New(slog.NewTextHandler(&logbuf.Buffer{}, nil))},
		Peer: b.ID(), ListenAddr: ma.StringCast("/ip4/127.0.0.1/udp/0"),
		Datagrams: streams.FlowConfig{Max: 100, Dropped: func(r string) {
			if r == streams.DropTooLarge {
				tooLarge.Add(1)
			}
		}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if !strings.Contains(f.Addr().String(), "/udp/") {
		t.Fatalf("bound %s, want a UDP address", f.Addr())
	}
	to, err := manet.ToNetAddr(f.Addr())
	if err != nil {
		t.Fatal(err)
	}
	dial := func() *net.UDPConn {
		c, err := net.DialUDP("udp4", nil, to.(*net.UDPAddr))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	c1, c2 := dial(), dial()
	echoes(t, c1, []byte("one"))
	echoes(t, c2, []byte("two"))
	if n := len(reg.List()); n != 2 {
		t.Fatalf("%d streams for two clients, want one each", n)
	}

	// Over the maximum: dropped and counted, never split; the flow goes
	// on.
	if _, err := c1.Write(bytes.Repeat([]byte{1}, 101)); err != nil {
		t.Fatal(err)
	}
	echoes(t, c1, []byte("after"))
	if n := tooLarge.Load(); n != 1 {
		t.Fatalf("too_large drops = %d, want 1", n)
	}

	// StopAccepting: live flows go on, a new client starts none. The
	// socket is read in order, so once c1's echo is back, c3's datagram
	// has been seen.
	k := f.udp
	f.StopAccepting()
	c3 := dial()
	if _, err := c3.Write([]byte("late")); err != nil {
		t.Fatal(err)
	}
	echoes(t, c1, []byte("still"))
	if n := k.flowCount(); n != 2 {
		t.Fatalf("%d flows after StopAccepting and a new client, want the 2 live ones", n)
	}

	// Close ends every flow and waits for them (goleak checks the rest).
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if n := len(reg.List()); n != 0 {
		t.Fatalf("%d streams after Close", n)
	}
}

// TestUDPForwardQueueFull fills a flow's queue while its stream cannot
// open (the peer's address accepts TCP and never answers, so the dial
// hangs): the queue holds flowQueue datagrams, the first included, and
// every one after is dropped and counted as queue_full.
func TestUDPForwardQueueFull(t *testing.T) {
	hole, err := net.Listen("tcp4", "127.0.0.1:0") // never accepted: the kernel's backlog takes the dial
	if err != nil {
		t.Fatal(err)
	}
	defer hole.Close()
	h := newHost(t, newKey(t), "/ip4/127.0.0.1/tcp/0")
	far := newKey(t)
	id, err := peer.IDFromPrivateKey(far)
	if err != nil {
		t.Fatal(err)
	}
	addr, err := manet.FromNetAddr(hole.Addr())
	if err != nil {
		t.Fatal(err)
	}
	h.Peerstore().AddAddr(id, addr, peerstore.PermanentAddrTTL)
	var full atomic.Int64
	f, err := New(h, Config{
		Side: seam.Side{Protocol: proto, Streams: &registry.Streams{}, Logger: slog.New(slog.NewTextHandler(&logbuf.Buffer{}, nil))},
		Peer: id, ListenAddr: ma.StringCast("/ip4/127.0.0.1/udp/0"), DialTimeout: time.Hour,
		Datagrams: streams.FlowConfig{Dropped: func(r string) {
			if r == streams.DropQueueFull {
				full.Add(1)
			}
		}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	to, err := manet.ToNetAddr(f.Addr())
	if err != nil {
		t.Fatal(err)
	}
	c, err := net.DialUDP("udp4", nil, to.(*net.UDPAddr))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// Sent in batches, each waited for, so that the forward's socket
	// buffer never overflows: the kernel would drop silently.
	send := func(n int) {
		for range n {
			if _, err := c.Write([]byte("d")); err != nil {
				t.Fatal(err)
			}
		}
	}
	for queued := 0; queued < flowQueue; {
		n := min(32, flowQueue-queued)
		send(n)
		queued += n
		harness.Until(t, time.Minute, "the datagrams queued", func() bool { return f.udp.queued() == queued })
	}
	const over = 40
	for dropped := 1; dropped <= over; dropped++ {
		send(1)
		harness.Until(t, time.Minute, "the datagram over the queue dropped as queue_full", func() bool { return full.Load() == int64(dropped) })
	}
	if n := f.udp.flowCount(); n != 1 {
		t.Errorf("%d flows, want the one client's", n)
	}
	if n := f.udp.queued(); n != flowQueue {
		t.Errorf("%d datagrams queued, want %d", n, flowQueue)
	}
}
