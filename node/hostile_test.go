package node

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/peerstore"
	"github.com/libp2p/go-libp2p/core/protocol"
	"github.com/libp2p/go-libp2p/p2p/transport/tcp"
	msmux "github.com/multiformats/go-multistream"
	"golang.org/x/time/rate"

	"github.com/p2ptun/p2ptun/access"
	"github.com/p2ptun/p2ptun/config"
	"github.com/p2ptun/p2ptun/config/homedir"
	"github.com/p2ptun/p2ptun/internal/harness"
	"github.com/p2ptun/p2ptun/spec"
)

// The hostile-peer tests put a victim node, serving an echo listener, under
// attack from a raw libp2p host that does what the p2ptun API never would,
// while a well-behaved node makes echo round trips through a forward to the
// same listener. Each test asserts that the attack was contained, that every
// good round trip succeeded, that refusals were logged once per peer and not
// once per stream, and that once the hostile host is gone the victim's
// streams, target connections, goroutines and file descriptors are back to
// where they were before the hostile host existed.

// hangGuard bounds every single wait so that a hang fails the test with a
// message instead of stalling the run; no test depends on it for its verdict.
const hangGuard = 30 * time.Second

const echoProto = protocol.ID("/x/echo")

// newHostile returns a bare libp2p host on loopback TCP with no resource
// limits of its own, so that only the victim decides what it may do.
func newHostile(t *testing.T, key crypto.PrivKey) host.Host {
	t.Helper()
	h, err := libp2p.New(
		libp2p.Identity(key),
		libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"),
		libp2p.Transport(tcp.NewTCPTransport),
		libp2p.DisableMetrics(),
		libp2p.ResourceManager(&network.NullResourceManager{}),
	)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	return h
}

// tally counts a target's connections: open now, ever, and the most open at
// once.
type tally struct{ open, total, peak atomic.Int64 }

func (c *tally) enter() {
	n := c.open.Add(1)
	c.total.Add(1)
	for p := c.peak.Load(); n > p && !c.peak.CompareAndSwap(p, n); p = c.peak.Load() {
	}
}

// countedServer is server with a tally of its connections.
func countedServer(t *testing.T, handle func(*net.TCPConn)) (string, *tally) {
	t.Helper()
	c := &tally{}
	addr := server(t, func(conn *net.TCPConn) {
		c.enter()
		defer c.open.Add(-1)
		handle(conn)
	})
	return addr, c
}

// arena is a victim node with an echo listener, a good node forwarding to
// it, and a hostile host.
type arena struct {
	victim   testNode
	good     testNode
	bad      host.Host
	victimID peer.ID
	badID    peer.ID
	echoes   *tally // the echo target's connections, from both peers
	fwd      string // the good node's forward, host:port
	base     usage  // taken once everything is set up
}

type arenaOpts struct {
	limits config.Limits
	// onlyGood gives the victim a node-wide policy that allows only the
	// good node; the hostile host is then not connected in advance.
	onlyGood bool
	// badOnListener puts the hostile host on the listener's allowlist,
	// next to the good node.
	badOnListener bool
}

func newArena(t *testing.T, o arenaOpts) *arena {
	t.Helper()
	ctx := context.Background()
	target, echoes := countedServer(t, echo)
	good := newNode(t)
	badKey, err := homedir.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	badID, err := peer.IDFromPrivateKey(badKey)
	if err != nil {
		t.Fatal(err)
	}
	goodID := mustPeer(t, good.id())
	victim := newNodeWith(t, func(opts *Options) {
		opts.Limits = o.limits
		// Long enough that "once per interval" means once per test.
		opts.Limits.LogInterval = config.D(time.Hour)
		if o.onlyGood {
			opts.Access = access.New([]peer.ID{goodID}, nil)
		}
	})
	allow := []string{good.id()}
	if o.badOnListener {
		allow = append(allow, badID.String())
	}
	if _, err := victim.listenReq(ctx, spec.Request{Protocol: string(echoProto), Target: target, Allow: allow}); err != nil {
		t.Fatal(err)
	}
	l, err := good.forwardReq(ctx, spec.Request{Protocol: string(echoProto), ListenAddress: "127.0.0.1:0", Peer: victim.fullAddr()})
	if err != nil {
		t.Fatal(err)
	}
	a := &arena{victim: victim, good: good, victimID: victim.Host().ID(), badID: badID, echoes: echoes, fwd: hostPort(t, l.ListenAddress)}
	// One round trip first, so that the good path's lazily started
	// machinery is part of the baseline; the baseline is taken before the
	// hostile host exists, so all it leaves behind must be gone at the end.
	if err := roundTrip(a.fwd, -1); err != nil {
		t.Fatalf("good peer before any attack: %v", err)
	}
	a.base = measure()
	a.bad = newHostile(t, badKey)
	a.bad.Peerstore().AddAddrs(a.victimID, victim.Host().Addrs(), peerstore.PermanentAddrTTL)
	if !o.onlyGood {
		cctx, cancel := context.WithTimeout(ctx, hangGuard)
		defer cancel()
		if err := a.bad.Connect(cctx, peer.AddrInfo{ID: a.victimID}); err != nil {
			t.Fatal(err)
		}
	}
	return a
}

func mustPeer(t *testing.T, s string) peer.ID {
	t.Helper()
	id, err := peer.Decode(s)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// badStreams counts the victim's live streams from the hostile host.
func (a *arena) badStreams() int {
	n := 0
	for _, s := range a.victim.Streams() {
		if s.Peer == a.badID.String() {
			n++
		}
	}
	return n
}

// maxGauge keeps the largest value it was shown.
type maxGauge struct{ v atomic.Int64 }

func (g *maxGauge) see(n int) {
	for p := g.v.Load(); int64(n) > p && !g.v.CompareAndSwap(p, int64(n)); p = g.v.Load() {
	}
}

// finish closes the hostile host and asserts that the victim forgets it:
// no streams from it, no target connections left open, and goroutines and
// file descriptors back to the baseline taken before the attack.
func (a *arena) finish(t *testing.T) {
	t.Helper()
	if err := a.bad.Close(); err != nil {
		t.Fatalf("closing the hostile host: %v", err)
	}
	waitFor(t, "victim streams from the hostile host", func() (bool, string) {
		n := a.badStreams()
		return n == 0, fmt.Sprintf("%d live streams from it", n)
	})
	waitFor(t, "echo target connections", func() (bool, string) {
		n := a.echoes.open.Load()
		return n == 0, fmt.Sprintf("%d still open", n)
	})
	waitFor(t, "victim connections to the hostile host", func() (bool, string) {
		n := len(a.victim.Host().Network().ConnsToPeer(a.badID))
		return n == 0, fmt.Sprintf("%d connections", n)
	})
	start := time.Now()
	expectNoLeaks(t, a.base)
	t.Logf("settled %v after the hostile host closed: %+v, baseline %+v", time.Since(start).Round(time.Millisecond), measure(), a.base)
	// The good peer is still served after the attack.
	if err := roundTrip(a.fwd, 1_000_000); err != nil {
		t.Fatalf("good peer after the attack: %v", err)
	}
}

// usage is what a leak would grow.
type usage struct{ fds, goroutines int }

// measure collects garbage first: the net package keeps splice pipes in a
// sync.Pool and closes them only when they are collected.
func measure() usage {
	runtime.GC()
	runtime.GC()
	fds, _ := os.ReadDir("/proc/self/fd")
	return usage{fds: len(fds), goroutines: runtime.NumGoroutine()}
}

// Slack over the baseline for background work that comes and goes (libp2p's
// timers, the peerstore, connection managers).
const fdSlack, goroutineSlack = 4, 10

func expectNoLeaks(t *testing.T, base usage) {
	t.Helper()
	waitFor(t, "file descriptors and goroutines back to the baseline", func() (bool, string) {
		u := measure()
		return u.fds <= base.fds+fdSlack && u.goroutines <= base.goroutines+goroutineSlack,
			fmt.Sprintf("fds %d (baseline %d), goroutines %d (baseline %d)", u.fds, base.fds, u.goroutines, base.goroutines)
	})
}

// waitFor polls cond until it holds, failing after a deadline with cond's
// last description of the state.
func waitFor(t *testing.T, what string, cond func() (bool, string)) {
	t.Helper()
	harness.UntilState(t, 20*time.Second, what, cond)
}

// roundTrip makes one echo round trip through the good node's forward.
func roundTrip(addr string, i int) error {
	d := net.Dialer{Timeout: hangGuard}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		return fmt.Errorf("round trip %d: %w", i, err)
	}
	defer c.Close()
	if err := c.SetDeadline(time.Now().Add(hangGuard)); err != nil {
		return err
	}
	msg := fmt.Appendf(nil, "good peer, round trip %d", i)
	if _, err := c.Write(msg); err != nil {
		return fmt.Errorf("round trip %d: write: %w", i, err)
	}
	if err := c.(*net.TCPConn).CloseWrite(); err != nil {
		return fmt.Errorf("round trip %d: close write: %w", i, err)
	}
	got, err := io.ReadAll(c)
	if err != nil {
		return fmt.Errorf("round trip %d: read: %w", i, err)
	}
	if !bytes.Equal(got, msg) {
		return fmt.Errorf("round trip %d: echo %q, want %q", i, got, msg)
	}
	return nil
}

// goodPeer makes one round trip for each poke, concurrently with whatever
// pokes it.
type goodPeer struct {
	kick  chan struct{}
	done  chan struct{}
	poked atomic.Int64
	n     int
	errs  []error
}

const maxPokes = 1024

func (a *arena) startGood() *goodPeer {
	g := &goodPeer{kick: make(chan struct{}, maxPokes), done: make(chan struct{})}
	go func() {
		defer close(g.done)
		for range g.kick {
			if err := roundTrip(a.fwd, g.n); err != nil {
				g.errs = append(g.errs, err)
			}
			g.n++
		}
	}()
	return g
}

// poke asks for one more round trip without waiting for it.
func (g *goodPeer) poke() {
	g.poked.Add(1)
	g.kick <- struct{}{}
}

// pokeAt spreads rounds pokes over an attack of n steps: call it at step i.
func (g *goodPeer) pokeAt(i, n, rounds int) {
	if every := max(n/rounds, 1); i%every == 0 && i/every < rounds {
		g.poke()
	}
}

// check waits for the outstanding round trips and asserts that each
// succeeded, and that there were at least want of them.
func (g *goodPeer) check(t *testing.T, want int) {
	t.Helper()
	close(g.kick)
	<-g.done
	for i, err := range g.errs {
		if i == 5 {
			t.Errorf("... and %d more", len(g.errs)-5)
			break
		}
		t.Errorf("good peer during the attack: %v", err)
	}
	if g.n < want || int64(g.n) != g.poked.Load() {
		t.Errorf("good peer made %d round trips (%d asked for), want %d", g.n, g.poked.Load(), want)
	}
	if len(g.errs) > 0 {
		t.FailNow()
	}
	if t.Failed() {
		t.FailNow()
	}
}

// countLines counts the log lines that contain every one of subs.
func countLines(logs string, subs ...string) int {
	n := 0
next:
	for line := range strings.Lines(logs) {
		for _, s := range subs {
			if !strings.Contains(line, s) {
				continue next
			}
		}
		n++
	}
	return n
}

// grepLines returns the log lines that contain sub.
func grepLines(logs, sub string) string {
	var b strings.Builder
	for line := range strings.Lines(logs) {
		if strings.Contains(line, sub) {
			b.WriteString(line)
		}
	}
	return b.String()
}

// warnings counts the victim's WARN and ERROR lines that name p.
func warnings(logs string, p peer.ID) int {
	return countLines(logs, "level=WARN", "peer="+p.String()) + countLines(logs, "level=ERROR", "peer="+p.String())
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, context.DeadlineExceeded) || errors.As(err, &ne) && ne.Timeout()
}

// errSample counts errors of a kind and keeps the first few for the
// failure message.
type errSample struct {
	mu   sync.Mutex
	n    int
	errs []error
}

func (e *errSample) add(err error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.n++
	if len(e.errs) < 3 {
		e.errs = append(e.errs, err)
	}
}

func (e *errSample) count() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.n
}

func (e *errSample) String() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return fmt.Sprint(e.errs)
}

// floodResult is what the hostile host saw of its flood.
type floodResult struct {
	bridged, refused, stalled atomic.Int64
	stalls                    errSample
	mu                        sync.Mutex
	held                      []network.Stream
	elapsed                   time.Duration
}

// flood opens n streams to the echo listener from `workers` goroutines.
// Each stream sends a byte and waits for its echo: a stream that gets it was
// bridged to the target and is held open, one that is refused (NewStream
// error, reset) is counted as refused, and one that neither gets an answer
// nor a refusal within hangGuard is counted as stalled. atStep runs before
// each attempt, atBridged after each bridged stream.
func (a *arena) flood(n, workers int, atStep func(int), atBridged func()) *floodResult {
	r := &floodResult{}
	var next atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for range workers {
		wg.Go(func() {
			buf := make([]byte, 1)
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				atStep(i)
				s, err := echoStream(a.bad, a.victimID, echoProto, buf)
				switch {
				case err == nil:
					r.mu.Lock()
					r.held = append(r.held, s)
					r.mu.Unlock()
					r.bridged.Add(1)
					atBridged()
				case isTimeout(err):
					r.stalled.Add(1)
					r.stalls.add(err)
				default:
					r.refused.Add(1)
				}
			}
		})
	}
	wg.Wait()
	r.elapsed = time.Since(start)
	return r
}

// TestHostileTenThousandStreams: a peer that is allowed on the listener
// opens 10,000 streams as fast as it can and holds every stream it gets. The
// limits refuse most of them with resets; the good peer keeps its round
// trips; the refusals are logged once, not 10,000 times.
func TestHostileTenThousandStreams(t *testing.T) {
	const attempts, workers = 10_000, 200

	t.Run("resource manager refuses", func(t *testing.T) {
		const capStreams, rounds = 64, 40
		a := newArena(t, arenaOpts{badOnListener: true, limits: config.Limits{
			ListenerPeerStreams: capStreams, PeerStreams: 2 * capStreams,
			PeerStreamRate: 1e9, PeerStreamBurst: 1e9, // the rate limiter stays out of it
		}})
		var seen maxGauge
		g := a.startGood()
		r := a.flood(attempts, workers,
			func(i int) {
				g.pokeAt(i, attempts, rounds)
				if i%100 == 0 {
					seen.see(a.badStreams())
				}
			},
			func() { seen.see(a.badStreams()) })
		g.check(t, rounds)
		t.Logf("%d attempts in %v: %d bridged, %d refused, %d stalled; at most %d bridged at once on the victim, %d target connections at once",
			attempts, r.elapsed.Round(time.Millisecond), r.bridged.Load(), r.refused.Load(), r.stalled.Load(), seen.v.Load(), a.echoes.peak.Load())

		if s := r.stalled.Load(); s != 0 {
			t.Errorf("%d streams were neither served nor refused: %s", s, &r.stalls)
		}
		if b := r.bridged.Load(); b < 1 || b > capStreams {
			t.Errorf("%d streams bridged and held, want 1..%d (listener_peer_streams)", b, capStreams)
		}
		if f := r.refused.Load(); f < attempts-capStreams {
			t.Errorf("only %d of %d streams refused", f, attempts)
		}
		if m := seen.v.Load(); m > capStreams {
			t.Errorf("victim had %d streams from the hostile peer at once, cap %d", m, capStreams)
		}
		if p := a.echoes.peak.Load(); p > capStreams+1 { // +1: the good peer's
			t.Errorf("target had %d connections at once, want at most %d", p, capStreams+1)
		}
		logs := a.victim.logs.String()
		if n := countLines(logs, "resource limit reached", "peer="+a.badID.String()); n < 1 || n > 3 {
			t.Errorf("%d 'resource limit reached' lines for the hostile peer, want 1 to 3 (one per kind of limit):\n%s", n, logs)
		}
		if n := countLines(logs, "resource limit reached"); n > 5 {
			t.Errorf("%d 'resource limit reached' lines in all, want a handful:\n%s", n, logs)
		}
		if n := warnings(logs, a.badID); n > 3 {
			t.Errorf("%d warnings name the hostile peer, want at most 3", n)
		}
		a.finish(t)
	})

	t.Run("rate limiter refuses", func(t *testing.T) {
		const rate, burst, rounds = 10, 20, 15 // rounds < burst: the good peer's own bucket never runs dry
		a := newArena(t, arenaOpts{badOnListener: true, limits: config.Limits{
			PeerStreamRate: rate, PeerStreamBurst: burst,
			NamedPeerStreamRate: rate, NamedPeerStreamBurst: burst, // the hostile peer is on the allow list
		}})
		var seen maxGauge
		g := a.startGood()
		r := a.flood(attempts, workers,
			func(i int) {
				g.pokeAt(i, attempts, rounds)
				if i%100 == 0 {
					seen.see(a.badStreams())
				}
			},
			func() { seen.see(a.badStreams()) })
		g.check(t, rounds)
		t.Logf("%d attempts in %v: %d bridged, %d refused, %d stalled; at most %d bridged at once on the victim",
			attempts, r.elapsed.Round(time.Millisecond), r.bridged.Load(), r.refused.Load(), r.stalled.Load(), seen.v.Load())

		// The bucket holds burst tokens and earns rate a second; the flood
		// lasted r.elapsed, so no more than this can have been admitted.
		allowed := int64(burst + rate*r.elapsed.Seconds() + 1)
		if s := r.stalled.Load(); s != 0 {
			t.Errorf("%d streams were neither served nor refused: %s", s, &r.stalls)
		}
		if b := r.bridged.Load(); b < burst || b > allowed {
			t.Errorf("%d streams bridged, want %d (the burst) to %d", b, burst, allowed)
		}
		if f := r.refused.Load(); f < attempts-allowed {
			t.Errorf("only %d of %d streams refused", f, attempts)
		}
		if m := seen.v.Load(); m > allowed {
			t.Errorf("victim had %d streams from the hostile peer at once, at most %d were admitted", m, allowed)
		}
		logs := a.victim.logs.String()
		if n := countLines(logs, "faster than limits.named_peer_stream_rate", "peer="+a.badID.String()); n != 1 {
			t.Errorf("%d rate-limit lines for the hostile peer, want exactly 1:\n%s", n, logs)
		}
		if n := warnings(logs, a.badID); n > 3 {
			t.Errorf("%d warnings name the hostile peer, want at most 3", n)
		}
		a.finish(t)
	})
}

// TestHostileGarbage: garbage through a tunnel is data and reaches the
// target byte for byte; garbage where libp2p expects a handshake or a
// protocol name is refused and reaches nothing.
func TestHostileGarbage(t *testing.T) {
	const sinkProto = protocol.ID("/x/sink")
	const streams, rawConns, badNames, rawStreams, rounds = 50, 20, 40, 40, 30
	a := newArena(t, arenaOpts{badOnListener: true})
	ctx := context.Background()
	// The sink hashes everything it receives and answers with the hash.
	sink, sinks := countedServer(t, func(c *net.TCPConn) {
		h := sha256.New()
		if _, err := io.Copy(h, c); err != nil {
			return
		}
		c.Write(h.Sum(nil))
		c.CloseWrite()
	})
	if _, err := a.victim.listenReq(ctx, spec.Request{Protocol: string(sinkProto), Target: sink, Allow: []string{a.badID.String()}}); err != nil {
		t.Fatal(err)
	}
	g := a.startGood()
	var wg sync.WaitGroup

	t.Run("through the tunnel", func(t *testing.T) {
		errs := make(chan error, streams)
		var next atomic.Int64
		for range 10 {
			wg.Go(func() {
				for i := int(next.Add(1) - 1); i < streams; i = int(next.Add(1) - 1) {
					errs <- a.sendGarbage(sinkProto, uint64(i), int64(i*2731%(256<<10)))
					if i%5 == 0 {
						g.poke()
					}
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Error(err)
			}
		}
		if n := sinks.total.Load(); n != streams {
			t.Errorf("sink target had %d connections, want %d", n, streams)
		}
	})

	t.Run("instead of a libp2p handshake", func(t *testing.T) {
		swarm := hostPort(t, a.victim.Host().Addrs()[0].String())
		var closed atomic.Int64
		for i := range rawConns {
			wg.Go(func() {
				c, err := net.Dial("tcp", swarm)
				if err != nil {
					t.Errorf("dialing the swarm: %v", err)
					return
				}
				defer c.Close()
				_ = c.SetDeadline(time.Now().Add(hangGuard))
				_, _ = io.Copy(c, prng(uint64(1000+i), 4096)) // the victim may hang up mid-way
				_, err = io.Copy(io.Discard, c)
				if isTimeout(err) {
					t.Errorf("raw connection %d: the victim kept a garbage connection open: %v", i, err)
					return
				}
				closed.Add(1)
			})
			if i%4 == 0 {
				g.poke()
			}
		}
		wg.Wait()
		if n := closed.Load(); n != rawConns {
			t.Errorf("the victim hung up on %d of %d garbage connections", n, rawConns)
		}
	})

	t.Run("as a protocol name", func(t *testing.T) {
		for i := range badNames {
			name := make([]byte, 1+i*53%1500) // some past multistream's 1 KiB limit
			io.ReadFull(prng(uint64(2000+i), int64(len(name))), name)
			if err := a.expectNoStream(protocol.ID(name)); err != nil {
				t.Errorf("protocol name %d (%d random bytes): %v", i, len(name), err)
			}
			if i%4 == 0 {
				g.poke()
			}
		}
	})

	t.Run("instead of protocol negotiation", func(t *testing.T) {
		for i := range rawStreams {
			ctx, cancel := context.WithTimeout(ctx, hangGuard)
			s, err := a.bad.Network().NewStream(ctx, a.victimID)
			cancel()
			if err != nil {
				t.Fatalf("raw stream %d: %v", i, err)
			}
			_ = s.SetDeadline(time.Now().Add(hangGuard))
			_, _ = io.Copy(s, prng(uint64(3000+i), 2048))
			_ = s.CloseWrite()
			_, err = io.ReadAll(s)
			s.Close()
			if isTimeout(err) {
				t.Errorf("raw stream %d: the victim neither answered nor reset: %v", i, err)
			}
			if i%4 == 0 {
				g.poke()
			}
		}
	})

	g.check(t, rounds)
	if n := sinks.total.Load(); n != streams {
		t.Errorf("sink target had %d connections, want only the %d tunnelled ones", n, streams)
	}
	if n := a.echoes.total.Load(); n != int64(g.n+1) { // +1: newArena's round trip
		t.Errorf("echo target had %d connections, want only the good peer's %d", n, g.n+1)
	}
	if n := warnings(a.victim.logs.String(), a.badID); n > 3 {
		t.Errorf("%d warnings name the hostile peer, want at most 3:\n%s", n, a.victim.logs)
	}
	a.finish(t)
}

// sendGarbage sends size pseudo-random bytes through the sink listener and
// checks the hash the target answers with.
func (a *arena) sendGarbage(proto protocol.ID, seed uint64, size int64) error {
	ctx, cancel := context.WithTimeout(context.Background(), hangGuard)
	defer cancel()
	s, err := a.bad.NewStream(ctx, a.victimID, proto)
	if err != nil {
		return fmt.Errorf("garbage stream %d: %w", seed, err)
	}
	defer s.Close()
	_ = s.SetDeadline(time.Now().Add(hangGuard))
	h := sha256.New()
	if _, err := io.Copy(io.MultiWriter(s, h), prng(seed, size)); err != nil {
		s.Reset()
		return fmt.Errorf("garbage stream %d: write: %w", seed, err)
	}
	if err := s.CloseWrite(); err != nil {
		s.Reset()
		return fmt.Errorf("garbage stream %d: close write: %w", seed, err)
	}
	got, err := io.ReadAll(s)
	if err != nil {
		return fmt.Errorf("garbage stream %d: read: %w", seed, err)
	}
	if !bytes.Equal(got, h.Sum(nil)) {
		return fmt.Errorf("garbage stream %d: the target received other bytes than the %d sent", seed, size)
	}
	return nil
}

// expectNoStream asserts that the hostile host cannot use proto on the
// victim: NewStream fails, or the stream is reset before it carries a byte.
func (a *arena) expectNoStream(proto protocol.ID) error {
	ctx, cancel := context.WithTimeout(context.Background(), hangGuard)
	defer cancel()
	s, err := a.bad.NewStream(ctx, a.victimID, proto)
	if err != nil {
		if isTimeout(err) {
			return fmt.Errorf("neither refused nor served: %w", err)
		}
		return nil
	}
	defer s.Reset()
	_ = s.SetDeadline(time.Now().Add(hangGuard))
	if _, err = s.Write([]byte("hello?")); err == nil {
		_, err = io.ReadFull(s, make([]byte, 1))
	}
	switch {
	case err == nil:
		return errors.New("the victim answered")
	case isTimeout(err):
		return fmt.Errorf("neither refused nor served: %w", err)
	}
	return nil
}

// TestHostileSlowloris: the hostile peer holds more idle streams than the
// per-peer caps allow and sends nothing on them.
func TestHostileSlowloris(t *testing.T) {
	const listenerCap, peerCap, rounds = 32, 64, 20
	limits := config.Limits{ListenerPeerStreams: listenerCap, PeerStreams: peerCap, PeerStreamRate: 1e9, PeerStreamBurst: 1e9}

	// Streams that negotiate the listener's protocol and then stay silent:
	// the victim bridges up to listener_peer_streams of them to the target
	// and resets the rest.
	t.Run("after negotiation", func(t *testing.T) {
		a := newArena(t, arenaOpts{badOnListener: true, limits: limits})
		var seen maxGauge
		var held []network.Stream
		refused := 0
		for i := range peerCap + listenerCap {
			ctx, cancel := context.WithTimeout(context.Background(), hangGuard)
			s, err := a.bad.Network().NewStream(ctx, a.victimID)
			cancel()
			if err != nil {
				t.Fatalf("stream %d: %v", i, err)
			}
			_ = s.SetDeadline(time.Now().Add(hangGuard))
			// Past the cap the victim accepts the protocol and then resets
			// the stream, sometimes before its acceptance is read.
			if err := msmux.SelectProtoOrFail(echoProto, s); err != nil {
				if isTimeout(err) {
					t.Fatalf("stream %d: negotiating %s: %v", i, echoProto, err)
				}
				s.Reset()
				refused++
				continue
			}
			_ = s.SetDeadline(time.Time{})
			held = append(held, s)
			seen.see(a.badStreams())
		}
		waitFor(t, "idle streams bridged", func() (bool, string) {
			n := a.badStreams()
			seen.see(n)
			return n == listenerCap, fmt.Sprintf("%d bridged, want %d", n, listenerCap)
		})
		if m := seen.v.Load(); m > listenerCap {
			t.Errorf("victim had %d streams from the hostile peer at once, cap %d", m, listenerCap)
		}
		g := a.startGood()
		for range rounds {
			g.poke()
		}
		g.check(t, rounds)
		if n := a.badStreams(); n != listenerCap {
			t.Errorf("%d idle streams bridged after the good peer's round trips, want still %d", n, listenerCap)
		}
		t.Logf("%d negotiated idle streams held, %d refused during negotiation; %d bridged", len(held), refused, a.badStreams())
		a.finish(t)
	})

	// Streams that never even name a protocol: they wait in the victim's
	// multistream negotiation, in the resource manager's transient scope.
	t.Run("before negotiation", func(t *testing.T) {
		a := newArena(t, arenaOpts{badOnListener: true, limits: limits})
		rm := a.victim.Host().Network().ResourceManager()
		inbound := func() int {
			n := 0
			_ = rm.ViewPeer(a.badID, func(s network.PeerScope) error {
				n = s.Stat().NumStreamsInbound
				return nil
			})
			return n
		}
		var held []network.Stream
		open := func() {
			ctx, cancel := context.WithTimeout(context.Background(), hangGuard)
			s, err := a.bad.Network().NewStream(ctx, a.victimID)
			cancel()
			if err != nil {
				t.Fatalf("stream %d: %v", len(held), err)
			}
			held = append(held, s)
		}
		for range peerCap + listenerCap {
			open()
		}
		waitFor(t, "silent streams held by the victim", func() (bool, string) {
			n := inbound()
			// A stream of the hostile host's own (identify) may have held
			// a slot while the victim refused the surplus: top up, as an
			// attacker would.
			if n < peerCap && len(held) < 4*(peerCap+listenerCap) {
				open()
			}
			return n == peerCap, fmt.Sprintf("%d inbound streams from the hostile peer, want %d (peer_streams)", n, peerCap)
		})
		g := a.startGood()
		for range rounds {
			g.poke()
		}
		defer func() {
			if t.Failed() {
				t.Logf("victim's limit lines:\n%s", grepLines(a.victim.logs.String(), "resource limit reached"))
			}
		}()
		g.check(t, rounds)
		if n := a.badStreams(); n != 0 {
			t.Errorf("%d silent streams were bridged", n)
		}
		// The victim resets them after libp2p's 10s negotiation timeout;
		// only a very slow run gets there before the round trips end.
		if n := inbound(); n != peerCap {
			t.Logf("note: the victim had dropped silent streams (%d left) before the round trips ended", n)
		}
		t.Logf("held %d silent streams; the victim holds %d", len(held), inbound())
		a.finish(t)
	})
}

// TestHostileNotAllowed: a peer that is refused keeps trying; it never gets
// a stream through, and the refusal is logged once.
func TestHostileNotAllowed(t *testing.T) {
	const attempts, rounds = 100, 20

	t.Run("node-wide allow list", func(t *testing.T) {
		// On the listener's allowlist, so that only the node-wide policy
		// stands in the way.
		a := newArena(t, arenaOpts{onlyGood: true, badOnListener: true})
		g := a.startGood()
		through := 0
		for i := range attempts {
			g.pokeAt(i, attempts, rounds)
			if a.dialThrough() {
				through++
			}
		}
		g.check(t, rounds)
		if through != 0 {
			t.Errorf("%d of %d attempts got an echo through", through, attempts)
		}
		if n := len(a.victim.Host().Network().ConnsToPeer(a.badID)); n != 0 {
			t.Errorf("victim has %d connections to a peer its policy refuses", n)
		}
		a.checkRefusedOnce(t, "refused connection", attempts, rounds)
		a.finish(t)
	})

	t.Run("listener allowlist", func(t *testing.T) {
		a := newArena(t, arenaOpts{})
		g := a.startGood()
		var seen maxGauge
		var through errSample
		for i := range attempts {
			g.pokeAt(i, attempts, rounds)
			if err := a.expectNoStream(echoProto); err != nil {
				through.add(fmt.Errorf("attempt %d: %w", i, err))
			}
			seen.see(a.badStreams())
		}
		g.check(t, rounds)
		if n := through.count(); n != 0 {
			t.Errorf("%d of %d attempts were not refused: %s", n, attempts, &through)
		}
		if m := seen.v.Load(); m != 0 {
			t.Errorf("victim bridged %d streams from a peer its listener does not allow", m)
		}
		a.checkRefusedOnce(t, "refused stream", attempts, rounds)
		a.finish(t)
	})
}

// dialThrough makes one attempt, dialing afresh (past libp2p's dial
// backoff), to get an echo from the victim's listener.
func (a *arena) dialThrough() bool {
	ctx, cancel := context.WithTimeout(context.Background(), hangGuard)
	defer cancel()
	s, err := a.bad.NewStream(network.WithForceDirectDial(ctx, "hostile test"), a.victimID, echoProto)
	if err != nil {
		return false
	}
	defer s.Reset()
	_ = s.SetDeadline(time.Now().Add(hangGuard))
	if _, err := s.Write([]byte("x")); err != nil {
		return false
	}
	_, err = io.ReadFull(s, make([]byte, 1))
	return err == nil
}

// TestHostileCustomProtocols: protocols the victim does not serve, close
// relatives of the one it does, and multistream's own tokens are all
// refused.
func TestHostileCustomProtocols(t *testing.T) {
	const repeats = 10
	protos := []string{
		"/custom/evil", "/x/nope", "/x/", "/x", "x/echo", "/x/echo/", "/x/echo/1.0.0",
		"/X/echo", "/x/ech", "/x//echo", "/x/./echo", "/x/echo\n", "/x/echo\x00", " /x/echo",
		"/multistream/1.0.0", "ls", "/p2p/circuit/evil",
		// Not "na": multistream's client reads the victim's "na" as an
		// acceptance, and the victim then waits out its 10s negotiation
		// timeout before the reset (correct, but slow).
	}
	a := newArena(t, arenaOpts{badOnListener: true})
	g := a.startGood()
	accepted := make(map[string]*errSample)
	for range repeats {
		g.poke()
		for _, p := range protos {
			if err := a.expectNoStream(protocol.ID(p)); err != nil {
				if accepted[p] == nil {
					accepted[p] = &errSample{}
				}
				accepted[p].add(err)
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), hangGuard)
		s, err := a.bad.NewStream(ctx, a.victimID, "/custom/evil", "/x/nope", "/x/echo/2")
		cancel()
		if err == nil {
			s.Reset()
			if accepted["several"] == nil {
				accepted["several"] = &errSample{}
			}
			accepted["several"].add(fmt.Errorf("accepted %s", s.Protocol()))
		}
	}
	g.check(t, repeats)
	for p, e := range accepted {
		t.Errorf("protocol %q: %d of %d attempts not refused: %s", p, e.count(), repeats, e)
	}
	if n := a.badStreams(); n != 0 {
		t.Errorf("%d streams from the hostile peer are bridged", n)
	}
	if n := a.echoes.total.Load(); n != repeats+1 {
		t.Errorf("echo target had %d connections, want only the good peer's %d", n, repeats+1)
	}
	a.finish(t)
}

// TestHostileResetsMidStream: the hostile peer opens streams, sends some
// bytes, and resets them at every stage; the victim ends each bridge and its
// target connection while the hostile peer is still connected.
func TestHostileResetsMidStream(t *testing.T) {
	const streams, workers, rounds = 400, 20, 40
	a := newArena(t, arenaOpts{badOnListener: true})
	g := a.startGood()
	var next atomic.Int64
	var wg sync.WaitGroup
	var opened, bridged atomic.Int64
	for range workers {
		wg.Go(func() {
			for i := int(next.Add(1) - 1); i < streams; i = int(next.Add(1) - 1) {
				g.pokeAt(i, streams, rounds)
				if a.resetAt(i) {
					bridged.Add(1)
				}
				opened.Add(1)
			}
		})
	}
	wg.Wait()
	g.check(t, rounds)
	// The hostile host is still connected: the resets alone must end every
	// bridge and close every target connection.
	waitFor(t, "victim streams after the resets", func() (bool, string) {
		n := a.badStreams()
		return n == 0, fmt.Sprintf("%d live streams from the hostile peer", n)
	})
	waitFor(t, "target connections after the resets", func() (bool, string) {
		n := a.echoes.open.Load()
		return n == 0, fmt.Sprintf("%d still open", n)
	})
	if n := len(a.victim.Host().Network().ConnsToPeer(a.badID)); n == 0 {
		t.Error("the victim dropped the hostile peer's connection; the resets alone should end the streams")
	}
	t.Logf("%d streams reset, %d of them after an echo; target saw %d connections", opened.Load(), bridged.Load(), a.echoes.total.Load())
	if n := bridged.Load(); n < streams/4 {
		t.Errorf("only %d streams got an echo before their reset; the test did not exercise live bridges", n)
	}
	if n := warnings(a.victim.logs.String(), a.badID); n > 3 {
		t.Errorf("%d warnings name the hostile peer, want at most 3 (never one per stream):\n%s", n, a.victim.logs)
	}
	a.finish(t)
}

// resetAt opens stream i and resets it at one of four stages, chosen by i.
// It reports whether the stream got an echo before its reset.
func (a *arena) resetAt(i int) bool {
	ctx, cancel := context.WithTimeout(context.Background(), hangGuard)
	defer cancel()
	s, err := a.bad.NewStream(ctx, a.victimID, echoProto)
	if err != nil {
		return false
	}
	defer s.Reset()
	_ = s.SetDeadline(time.Now().Add(hangGuard))
	size := int64(1 + i*977%(64<<10))
	switch i % 4 {
	case 0: // before sending anything
		return false
	case 1: // right after sending
		_, _ = io.Copy(s, prng(uint64(i), size))
		return false
	case 2: // with the echo flowing
		_, _ = io.Copy(s, prng(uint64(i), size))
		_, err := io.ReadFull(s, make([]byte, 1))
		return err == nil
	default: // half-closed, halfway through the echo
		_, _ = io.Copy(s, prng(uint64(i), size))
		_ = s.CloseWrite()
		_, err := io.ReadFull(s, make([]byte, (size+1)/2))
		return err == nil
	}
}

// checkRefusedOnce asserts that attempts refusals of the bad peer were
// logged exactly once (what names the line) and that only the good peer's
// rounds (and its first probe) reached the echo target.
func (a *arena) checkRefusedOnce(t *testing.T, what string, attempts, rounds int) {
	t.Helper()
	logs := a.victim.logs.String()
	if n := countLines(logs, what, "peer="+a.badID.String()); n != 1 {
		t.Errorf("%d refusal lines for %d attempts, want exactly 1:\n%s", n, attempts, logs)
	}
	if n := warnings(logs, a.badID); n > 1 {
		t.Errorf("%d warnings name the refused peer, want 1", n)
	}
	if n := a.echoes.total.Load(); n != int64(rounds+1) {
		t.Errorf("echo target had %d connections, want only the good peer's %d", n, rounds+1)
	}
}

// TestHostileIdleConnections: a host on another loopback address opens
// many TCP connections to the victim's swarm port, never says a word on
// them, and reopens each one the victim drops; a peer that has never
// connected before still connects, at its first attempt, and tunnels.
func TestHostileIdleConnections(t *testing.T) {
	const held = 300 // more than go-libp2p's transient scope ever held
	victim := newNode(t)
	swarm := hostPort(t, victim.fullAddr())
	ctx, stop := context.WithCancel(context.Background())
	var (
		attackers       sync.WaitGroup
		opened, dropped atomic.Int64
		atLimit         = make(chan struct{})
		once            sync.Once
	)
	defer func() { stop(); attackers.Wait() }()
	// Far more new connections a second than the ~7 that kept go-libp2p's
	// defaults locked, but not a flood that would starve the machine.
	pace := rate.NewLimiter(200, held)
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}, Timeout: hangGuard}
	for range held {
		attackers.Go(func() {
			for pace.Wait(ctx) == nil {
				c, err := d.DialContext(ctx, "tcp", swarm)
				if err != nil {
					continue
				}
				opened.Add(1)
				unblock := context.AfterFunc(ctx, func() { c.Close() })
				_, _ = io.Copy(io.Discard, c) // until the victim drops it
				if unblock() {
					// The victim dropped it: it is at whatever limit it
					// puts on this host.
					dropped.Add(1)
					once.Do(func() { close(atLimit) })
				}
				c.Close()
			}
		})
	}
	select {
	case <-atLimit:
	case <-time.After(hangGuard):
		t.Fatalf("the victim dropped none of the %d idle connections opened", opened.Load())
	}

	target, _ := countedServer(t, echo)
	good := newNodeWith(t, func(o *Options) { o.Timeouts.Dial = config.D(hangGuard) })
	if _, err := victim.listenReq(context.Background(), spec.Request{Protocol: string(echoProto), Target: target, Allow: []string{good.id()}}); err != nil {
		t.Fatal(err)
	}
	l, err := good.forwardReq(context.Background(), spec.Request{Protocol: string(echoProto), ListenAddress: "127.0.0.1:0", Peer: victim.fullAddr()})
	if err != nil {
		t.Fatalf("good peer, with %d idle connections opened and %d dropped: %v\nvictim's limit lines:\n%s",
			opened.Load(), dropped.Load(), err, grepLines(victim.logs.String(), "resource limit reached"))
	}
	if err := roundTrip(hostPort(t, l.ListenAddress), 0); err != nil {
		t.Fatalf("good peer: %v", err)
	}
	t.Logf("good peer connected; the hostile host had opened %d connections, %d dropped", opened.Load(), dropped.Load())
}

// TestHostileSilentConnectionCut: a connection that says nothing is closed
// once timeouts.handshake has passed, not after go-libp2p's 15s.
func TestHostileSilentConnectionCut(t *testing.T) {
	victim := newNodeWith(t, func(o *Options) { o.Timeouts.Handshake = config.D(config.MinNetTimeout) })
	c, err := net.DialTimeout("tcp", hostPort(t, victim.fullAddr()), hangGuard)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// Far beyond the 100ms minimum, and short of go-libp2p's own 15s: only the
	// configured timeout can end the connection before this.
	const libp2pDefault = 15 * time.Second
	if err := c.SetReadDeadline(time.Now().Add(libp2pDefault - 2*time.Second)); err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(io.Discard, c); isTimeout(err) {
		t.Fatalf("the victim still held a silent connection after %v", libp2pDefault-2*time.Second)
	}
}
