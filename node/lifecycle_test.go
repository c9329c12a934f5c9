package node

import (
	"context"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	ma "github.com/multiformats/go-multiaddr"

	"github.com/p2ptun/p2ptun/config"
	"github.com/p2ptun/p2ptun/internal/harness"
	"github.com/p2ptun/p2ptun/spec"
)

// gatedProxy forwards TCP connections to target until partition is
// called; from then on it moves no byte in either direction but keeps
// every socket open: to both ends the path looks alive and silent, as in
// a network partition (no FIN, no RST).
type gatedProxy struct {
	ln     net.Listener
	target string
	cut    chan struct{}
	once   sync.Once
	wg     sync.WaitGroup
	mu     sync.Mutex
	conns  []net.Conn
}

func newGatedProxy(t *testing.T, target string) *gatedProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &gatedProxy{ln: ln, target: target, cut: make(chan struct{})}
	p.wg.Go(p.serve)
	t.Cleanup(func() {
		ln.Close()
		p.partition()
		p.mu.Lock()
		for _, c := range p.conns {
			c.Close()
		}
		p.mu.Unlock()
		p.wg.Wait()
	})
	return p
}

func (p *gatedProxy) partition() { p.once.Do(func() { close(p.cut) }) }

func (p *gatedProxy) serve() {
	for {
		in, err := p.ln.Accept()
		if err != nil {
			return
		}
		out, err := net.Dial("tcp", p.target)
		if err != nil {
			in.Close()
			continue
		}
		p.mu.Lock()
		p.conns = append(p.conns, in, out)
		p.mu.Unlock()
		p.wg.Go(func() { p.pump(out, in) })
		p.wg.Go(func() { p.pump(in, out) })
	}
}

// pump copies src to dst until the partition, then reads and drops
// nothing more: it just stops, leaving both connections open.
func (p *gatedProxy) pump(dst, src net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		select {
		case <-p.cut:
			return
		default:
		}
		if n > 0 {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

func TestKeepaliveEndsStreamsOfASilentPeer(t *testing.T) {
	keepalive := func(o *Options) { o.Timeouts.Keepalive = config.D(time.Second) }
	a, b := newNodeWith(t, keepalive), newNodeWith(t, keepalive)
	proxy := newGatedProxy(t, hostPort(t, b.fullAddr()))
	ctx := context.Background()
	if _, err := b.listenReq(ctx, spec.Request{Protocol: "/x/ka", Target: server(t, echo), Allow: []string{a.id()}}); err != nil {
		t.Fatal(err)
	}
	via := "/ip4/127.0.0.1/tcp/" + portOf(t, proxy.ln.Addr().String()) + "/p2p/" + b.id()
	l, err := a.forwardReq(ctx, spec.Request{Protocol: "/x/ka", ListenAddress: "/ip4/127.0.0.1/tcp/0", Peer: via})
	if err != nil {
		t.Fatal(err)
	}
	fwd := hostPort(t, l.ListenAddress)
	c := dial(t, fwd)
	harness.Echoes(t, c, "before")

	proxy.partition()
	start := time.Now()
	_ = c.SetReadDeadline(time.Now().Add(30 * time.Second)) // a bound against hanging, far above the keepalive
	_, err = io.ReadAll(c)
	if !harness.IsReset(err) {
		t.Fatalf("client read across a partition: err = %v, want a reset once the keepalive gives up", err)
	}
	t.Logf("reset %v after the partition (keepalive 1s)", time.Since(start).Round(10*time.Millisecond))
	// The client's reset can arrive before the forward has unlisted the
	// stream: it resets the client first.
	pollUntil(t, "a to list no streams after the keepalive", func() bool { return len(a.Streams()) == 0 })
	// The path heals (the peerstore still has b's own address, learned
	// through identify): a new client connection works without restarting
	// anything.
	harness.Echoes(t, dial(t, fwd), "after")
}

func portOf(t *testing.T, hostport string) string {
	t.Helper()
	_, port, err := net.SplitHostPort(hostport)
	if err != nil {
		t.Fatal(err)
	}
	return port
}

func TestDrainLetsLiveStreamsFinishThenResets(t *testing.T) {
	a, b := newNode(t), newNode(t)
	// The target answers each connection only when told to.
	answer := make(chan struct{})
	target := server(t, func(c *net.TCPConn) {
		io.ReadAll(c) // until the client half-closes
		<-answer
		io.WriteString(c, "late reply")
		c.CloseWrite()
	})
	addr := tunnel(t, a, b, "/x/drain", target)
	finishing, idle := dial(t, addr), dial(t, addr)
	if err := finishing.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	waitStreams := func(n int) {
		t.Helper()
		pollUntil(t, "streams on a", func() bool { return len(a.Streams()) == n })
	}
	waitStreams(2)

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	dctx, stopDrain := context.WithCancel(ctx)
	left := make(chan int, 1)
	go func() { left <- a.Drain(dctx) }()
	// Draining: the forward no longer accepts...
	pollUntil(t, "the forward to stop accepting", func() bool {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
		}
		return err != nil
	})
	// ...while a live stream still finishes, whole and clean.
	close(answer)
	got, err := io.ReadAll(finishing)
	if err != nil || string(got) != "late reply" {
		t.Fatalf("the stream that finished during the drain got %q, %v; want the whole reply and a clean end", got, err)
	}
	waitStreams(1)
	// The idle one outlasts the drain time (here: until we end it), and
	// Close resets it.
	stopDrain()
	if n := <-left; n != 1 {
		t.Fatalf("Drain left %d streams, want the idle one", n)
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadAll(idle); !harness.IsReset(err) {
		t.Fatalf("the idle stream after the drain: err = %v, want a reset", err)
	}
}

// A QUIC connection holds at most 256 streams; the keepalive's ping then
// cannot open one. That is not silence: the tunnels must live on.
func TestKeepaliveSparesAQUICConnectionAtItsStreamLimit(t *testing.T) {
	unopened := make(chan struct{}, 64)
	quicOnly := func(o *Options) {
		o.ListenAddrs = []ma.Multiaddr{ma.StringCast("/ip4/127.0.0.1/udp/0/quic-v1")}
		o.Timeouts.Keepalive = config.D(time.Second)
	}
	a := newNodeWith(t, func(o *Options) {
		quicOnly(o)
		o.UnopenedProbe = func(peer.ID) {
			select {
			case unopened <- struct{}{}:
			default:
			}
		}
	})
	b := newNodeWith(t, quicOnly)
	addr := tunnel(t, a, b, "/x/full", server(t, echo))
	conns := make([]*net.TCPConn, 256)
	for i := range conns {
		conns[i] = dial(t, addr)
		harness.Echoes(t, conns[i], "open")
	}
	// Two probes in a row found no stream to ping with...
	for range 2 {
		select {
		case <-unopened:
		case <-time.After(30 * time.Second):
			t.Fatal("no keepalive probe within 30s")
		}
	}
	// ...and every tunnel still works.
	for i, c := range conns {
		if _, err := io.WriteString(c, "still"); err != nil {
			t.Fatalf("conn %d: %v", i, err)
		}
		buf := make([]byte, 5)
		if _, err := io.ReadFull(c, buf); err != nil {
			t.Fatalf("conn %d after the probes: %v (the keepalive cut a busy QUIC connection)", i, err)
		}
	}
}
