//go:build linux

package main

// Fault tests: real daemons (the built binary) on loopback, one fault
// injected at a time, and what a tunnel's client sees asserted: a reset
// (never a clean EOF for a broken transfer, never a hang), and working
// connections once the fault is gone. README "Failure behaviour" is the
// summary of these tests.

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/p2ptun/p2ptun/internal/harness"
	"github.com/p2ptun/p2ptun/internal/testnet"
)

const (
	// faultKeepalive is timeouts.keepalive in the tests' configs.
	faultKeepalive = 2 * time.Second
	// resetBound is how long a client may wait for the reset a fault
	// must end its connection with; past it, the connection hung.
	resetBound = 3 * faultKeepalive
	// recoverBound is how long a tunnel may take to work again once a
	// fault is gone; it is far above the forward's redial backoff.
	recoverBound = 20 * time.Second
)

// faultPair is two daemons on loopback: B serves /x/echo (a [[listen]] in
// its config) for A, and A forwards fwd to it (a [[forward]]).
type faultPair struct {
	a, b   *harness.Daemon
	fwd    string // A's forward, host:port
	bSwarm string // B's swarm address, fixed so that a restarted B is found again
}

// pairOpts adjusts startPair.
type pairOpts struct {
	aTimeouts, bTimeouts string // [timeouts] keys beyond keepalive
	byID                 bool   // A's forward names B by /p2p/ID alone, not its full address
	lazy                 bool
}

// startPair writes both configs, starts B and then A, and waits until A's
// config tunnels are up.
func startPair(t *testing.T, target string, o pairOpts) *faultPair {
	t.Helper()
	aHome, aID := harness.InitHome(t, nil)
	bHome, bID := harness.InitHome(t, nil)
	p := &faultPair{bSwarm: fmt.Sprintf("/ip4/127.0.0.1/tcp/%d", testnet.FreePort(t))}
	keepalive := fmt.Sprintf("[timeouts]\nkeepalive = %q\n", faultKeepalive)
	harness.WriteConfig(t, bHome, keepalive+o.bTimeouts+fmt.Sprintf(`
[[listen]]
name = "echo"
protocol = "/x/echo"
target = %q
allow = [%q]
`, target, aID))
	peer := p.bSwarm + "/p2p/" + bID
	if o.byID {
		peer = "/p2p/" + bID
	}
	harness.WriteConfig(t, aHome, keepalive+o.aTimeouts+fmt.Sprintf(`
[[forward]]
name = "echo"
protocol = "/x/echo"
listen = "/ip4/127.0.0.1/tcp/0"
peer = %q
lazy = %t
`, peer, o.lazy))
	p.b = harness.Start(t, harness.Spec{Home: bHome, ListenAddr: p.bSwarm})
	p.startA(t, harness.Spec{Home: aHome})
	return p
}

// startA starts A as spec says, waits until its config tunnels are up and
// finds its forward.
func (p *faultPair) startA(t *testing.T, spec harness.Spec) {
	t.Helper()
	p.a = harness.Start(t, spec)
	if out, errOut, code := p.a.CLI(t, "wait", "--timeout", "20s"); code != 0 {
		t.Fatalf("wait: exit %d: %s%s\n%s", code, out, errOut, p.a.Logs)
	}
	out, errOut, code := p.a.CLI(t, "ls", "--json")
	if code != 0 {
		t.Fatalf("ls: exit %d: %s", code, errOut)
	}
	var ls struct {
		Listeners []struct{ Name, ListenAddress string }
	}
	if err := json.Unmarshal([]byte(out), &ls); err != nil {
		t.Fatalf("ls --json: %v: %s", err, out)
	}
	for _, l := range ls.Listeners {
		var port int
		if _, err := fmt.Sscanf(l.ListenAddress, "/ip4/127.0.0.1/tcp/%d", &port); l.Name == "echo" && err == nil {
			p.fwd = fmt.Sprintf("127.0.0.1:%d", port)
			return
		}
	}
	t.Fatalf("A lists no forward named echo: %s", out)
}

// restartA stops A with SIGTERM and starts it again.
func (p *faultPair) restartA(t *testing.T) {
	t.Helper()
	p.a.Signal(t, syscall.SIGTERM)
	p.startA(t, p.a.Spec)
}

// target is a TCP service on loopback that can crash (every connection
// reset, as when a process dies with data in flight) and start again on
// the same port.
type target struct {
	handle func(net.Conn, <-chan struct{}) // the second argument closes at a crash
	addr   string

	mu    sync.Mutex
	ln    net.Listener
	conns map[net.Conn]bool
	down  chan struct{}
	wg    sync.WaitGroup
}

// newTarget starts a target that runs handle for each connection; it is
// stopped at cleanup.
func newTarget(t *testing.T, handle func(net.Conn, <-chan struct{})) *target {
	t.Helper()
	s := &target{handle: handle, addr: "127.0.0.1:0"}
	s.start(t)
	t.Cleanup(s.crash)
	return s
}

// echoHandler copies until EOF, then half-closes.
func echoHandler(c net.Conn, _ <-chan struct{}) {
	_, _ = io.Copy(c, c)
	_ = c.(*net.TCPConn).CloseWrite()
}

// start listens on the target's address (the same port after a crash).
func (s *target) start(t *testing.T) {
	t.Helper()
	ln, err := net.Listen("tcp", s.addr)
	if err != nil {
		t.Fatal(err)
	}
	s.mu.Lock()
	s.ln, s.addr, s.conns, s.down = ln, ln.Addr().String(), map[net.Conn]bool{}, make(chan struct{})
	down := s.down
	s.mu.Unlock()
	s.wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.mu.Lock()
			select {
			case <-down: // crashed while this one was being accepted
				s.mu.Unlock()
				_ = c.(*net.TCPConn).SetLinger(0)
				c.Close()
				return
			default:
			}
			s.conns[c] = true
			s.mu.Unlock()
			s.wg.Go(func() {
				defer c.Close()
				s.handle(c, down)
			})
		}
	})
}

// crash closes the listener and resets every connection, and waits for
// the handlers to return. It is idempotent.
func (s *target) crash() {
	s.mu.Lock()
	if s.ln != nil {
		s.ln.Close()
		close(s.down)
		for c := range s.conns {
			_ = c.(*net.TCPConn).SetLinger(0)
			c.Close()
		}
		s.ln = nil
	}
	s.mu.Unlock()
	s.wg.Wait()
}

// dialFwd connects a client to a forward; the connection is closed at
// cleanup.
func dialFwd(t *testing.T, addr string) *net.TCPConn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("connecting to the forward %s: %v", addr, err)
	}
	t.Cleanup(func() { c.Close() })
	return c.(*net.TCPConn)
}

// roundTrip writes msg and reads it back (through an echo target) within
// bound.
func roundTrip(c net.Conn, msg []byte, bound time.Duration) error {
	if err := c.SetDeadline(time.Now().Add(bound)); err != nil {
		return err
	}
	if _, err := c.Write(msg); err != nil {
		return err
	}
	got := make([]byte, len(msg))
	if _, err := io.ReadFull(c, got); err != nil {
		return err
	}
	if !bytes.Equal(got, msg) {
		return fmt.Errorf("echo differs from what was sent (%d bytes)", len(msg))
	}
	return c.SetDeadline(time.Time{})
}

// ended says how a client connection ended, for failure messages.
func ended(err error) string {
	switch {
	case err == nil:
		return "no error"
	case harness.IsReset(err):
		return "a reset"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "a clean EOF"
	case errors.Is(err, os.ErrDeadlineExceeded):
		return "nothing: it hung until the test's deadline"
	}
	return err.Error()
}

// readToEnd reads c until it ends, for at most bound, and returns how
// many bytes came, how long that took and how it ended (io.EOF: cleanly).
func readToEnd(c net.Conn, bound time.Duration) (n int64, took time.Duration, err error) {
	start := time.Now()
	if err := c.SetReadDeadline(start.Add(bound)); err != nil {
		return 0, 0, err
	}
	n, err = io.Copy(io.Discard, c)
	if err == nil {
		err = io.EOF // io.Copy reports a clean end as nil
	}
	return n, time.Since(start), err
}

// expectResets connects count clients to a forward at once and checks
// that each is reset within bound: promptly refused, not left hanging.
func expectResets(t *testing.T, fwd string, count int, bound time.Duration, why string) {
	t.Helper()
	errs := make([]error, count)
	took := make([]time.Duration, count)
	var wg sync.WaitGroup
	for i := range count {
		c, err := net.Dial("tcp", fwd)
		if err != nil {
			// Reset before the dial returned, or the forward is not bound.
			errs[i] = err
			continue
		}
		t.Cleanup(func() { c.Close() })
		wg.Go(func() { _, took[i], errs[i] = readToEnd(c, bound) })
	}
	wg.Wait()
	for i, err := range errs {
		if !harness.IsReset(err) {
			t.Fatalf("%s: client %d/%d got %s, want a reset", why, i+1, count, ended(err))
		}
	}
	t.Logf("%s: %d clients reset, the slowest after %v", why, count, slowest(took))
}

func slowest(ds []time.Duration) time.Duration {
	var m time.Duration
	for _, d := range ds {
		m = max(m, d)
	}
	return m.Round(time.Millisecond)
}

// untilEchoes connects clients to a forward until one gets an echo back;
// every one before must end in a reset (not hang). It returns the number
// of reset clients.
func untilEchoes(t *testing.T, fwd string, why string) int {
	t.Helper()
	start := time.Now()
	for resets := 0; ; resets++ {
		c, err := net.Dial("tcp", fwd)
		if err == nil {
			err = roundTrip(c, []byte("are you there?"), resetBound)
			c.Close()
		} else if !harness.IsReset(err) {
			t.Fatalf("%s: connecting to the forward: %v (it should stay bound)", why, err)
		}
		if err == nil {
			t.Logf("%s: the tunnel works again after %v and %d reset clients", why, time.Since(start).Round(time.Millisecond), resets)
			return resets
		}
		if !harness.IsReset(err) {
			t.Fatalf("%s: client %d got %s, want an echo or a reset", why, resets+1, ended(err))
		}
		if time.Since(start) > recoverBound {
			t.Fatalf("%s: the tunnel does not work after %v (%d clients reset)", why, recoverBound, resets+1)
		}
		time.Sleep(50 * time.Millisecond) // the poll interval, not a wait for an event
	}
}

// transfer is a client connection kept busy: it writes a chunk and reads
// it back, over and over, until the connection fails.
type transfer struct {
	c       *net.TCPConn
	started chan struct{} // closed after the first round trip
	done    chan error    // the error that ended it
}

// startTransfers starts count transfers through a forward (to an echo
// target) and returns once each has made a round trip.
func startTransfers(t *testing.T, fwd string, count int) []*transfer {
	t.Helper()
	var ts []*transfer
	for range count {
		tr := &transfer{c: dialFwd(t, fwd), started: make(chan struct{}), done: make(chan error, 1)}
		go tr.run()
		t.Cleanup(func() { tr.c.Close(); <-tr.done })
		ts = append(ts, tr)
	}
	for i, tr := range ts {
		select {
		case <-tr.started:
		case err := <-tr.done:
			t.Fatalf("transfer %d failed before its first round trip: %v", i+1, err)
		}
	}
	return ts
}

func (tr *transfer) run() {
	chunk := bytes.Repeat([]byte("0123456789abcdef"), 1024)
	got := make([]byte, len(chunk))
	// A guard against a hang; tests set a tighter deadline at the fault.
	err := tr.c.SetDeadline(time.Now().Add(time.Minute))
	for i := 0; err == nil; i++ {
		if _, err = tr.c.Write(chunk); err != nil {
			break
		}
		if _, err = io.ReadFull(tr.c, got); err != nil {
			break
		}
		if i == 0 {
			close(tr.started)
		}
	}
	tr.done <- err
}

// expectTransfersReset waits (at most resetBound from now) for each
// transfer to end and checks it ended with a reset.
func expectTransfersReset(t *testing.T, ts []*transfer, why string) {
	t.Helper()
	start := time.Now()
	for _, tr := range ts {
		_ = tr.c.SetDeadline(start.Add(resetBound))
	}
	took := make([]time.Duration, len(ts))
	for i, tr := range ts {
		err := <-tr.done
		tr.done <- err // for the cleanup
		took[i] = time.Since(start)
		if !harness.IsReset(err) {
			t.Fatalf("%s: transfer %d/%d ended with %s, want a reset within %v", why, i+1, len(ts), ended(err), resetBound)
		}
	}
	t.Logf("%s: %d transfers reset, the last after %v (keepalive %v)", why, len(ts), slowest(took), faultKeepalive)
}

// waitLog waits until the daemon's log contains s: what the tests
// read there is the log line the user is told to act on.
func waitLog(t *testing.T, d *harness.Daemon, s string) {
	t.Helper()
	d.Until(t, recoverBound, fmt.Sprintf("log line %q", s), func() bool { return strings.Contains(d.Logs.String(), s) })
}

func TestFaultPeerKilledMidTransfer(t *testing.T) {
	t.Parallel()
	echo := newTarget(t, echoHandler)
	p := startPair(t, echo.addr, pairOpts{})
	ts := startTransfers(t, p.fwd, 4)

	p.b.Kill(t)
	expectTransfersReset(t, ts, "B killed")
	p.a.Running(t, "after B was killed")
	// The forward stays bound; B is gone, so new clients are reset too.
	expectResets(t, p.fwd, 3, resetBound, "B down")
}

func TestFaultTargetRestart(t *testing.T) {
	t.Parallel()
	echo := newTarget(t, echoHandler)
	p := startPair(t, echo.addr, pairOpts{})
	ts := startTransfers(t, p.fwd, 3)
	events := p.b.Events(t)

	echo.crash()
	expectTransfersReset(t, ts, "target crashed")
	// B dials the target for each new stream: refused, so reset.
	expectResets(t, p.fwd, 3, resetBound, "target down")
	harness.NextEvent(t, events, recoverBound, "B's stream_failed event for the target dial", func(ev harness.Event) bool {
		return ev.Type == "stream_failed" && ev.Reason == "target_dial" && ev.Kind == "listen" && ev.Protocol == "/x/echo"
	})

	echo.start(t)
	if err := roundTrip(dialFwd(t, p.fwd), []byte("back"), resetBound); err != nil {
		t.Fatalf("first client once the target is back: %s, want an echo", ended(err))
	}
	// The event says why; the log line is what an operator reads.
	if !strings.Contains(p.b.Logs.String(), "target dial failed; stream reset") {
		t.Errorf("B did not log the failed target dials:\n%s", p.b.Logs)
	}
}

func TestFaultDaemonRestart(t *testing.T) {
	t.Parallel()
	echo := newTarget(t, echoHandler)
	p := startPair(t, echo.addr, pairOpts{bTimeouts: "drain = \"500ms\"\n"})
	live := dialFwd(t, p.fwd)
	if err := roundTrip(live, []byte("before"), resetBound); err != nil {
		t.Fatalf("client before the restart: %s, want an echo", ended(err))
	}

	// B stops: the idle client is reset once B's drain time is over.
	p.b.Signal(t, syscall.SIGTERM)
	if _, _, err := readToEnd(live, resetBound); !harness.IsReset(err) {
		t.Fatalf("live client when B stopped: %s, want a reset", ended(err))
	}
	// A keeps its forward bound; a burst of clients while B is down are
	// all reset, promptly.
	expectResets(t, p.fwd, 5, resetBound, "B down")
	p.a.Running(t, "while B is down")

	// B is back on the same address: the forward re-dials it (A is not
	// restarted, nothing is reconfigured).
	p.b = p.b.Restart(t)
	untilEchoes(t, p.fwd, "B restarted")

	// A restarts: its config tunnels come back (`p2ptun wait` exits 0).
	p.restartA(t)
	if err := roundTrip(dialFwd(t, p.fwd), []byte("after A's restart"), resetBound); err != nil {
		t.Fatalf("client after A's restart: %s, want an echo", ended(err))
	}
}

// TestFaultForwardByIDRedials checks that a forward that names its peer
// by ID alone survives the peer's restart and its own, on the addresses it
// learned: by identify from a first connection, then from the peer cache.
func TestFaultForwardByIDRedials(t *testing.T) {
	t.Parallel()
	echo := newTarget(t, echoHandler)
	p := startPair(t, echo.addr, pairOpts{byID: true, lazy: true})
	// A knows nothing but B's ID (no DHT peers, no mDNS).
	expectResets(t, p.fwd, 1, resetBound, "B's address unknown")

	// B connects to A; identify tells A where B listens.
	if out, errOut, code := p.b.CLI(t, "ping", "-n", "1", p.a.Addresses[0]); code != 0 {
		t.Fatalf("ping from B to A: exit %d: %s%s", code, out, errOut)
	}
	untilEchoes(t, p.fwd, "B connected to A")

	p.b.Kill(t)
	p.b = p.b.Restart(t)
	untilEchoes(t, p.fwd, "B restarted")

	p.restartA(t)
	untilEchoes(t, p.fwd, "A restarted")
}

func TestFaultDrainOnSIGTERM(t *testing.T) {
	t.Parallel()
	const drain = 3 * time.Second
	part := bytes.Repeat([]byte("0123456789abcdef"), 4096)
	release := make(chan struct{})
	// The first byte a client sends picks what the target does: 'T' sends
	// part, waits for release, sends part again and half-closes; 'I'
	// answers "ok" and then waits for the client.
	slow := newTarget(t, func(c net.Conn, down <-chan struct{}) {
		mode := make([]byte, 1)
		if _, err := io.ReadFull(c, mode); err != nil {
			return
		}
		if mode[0] == 'T' {
			if _, err := c.Write(part); err != nil {
				return
			}
			select {
			case <-release:
			case <-down:
				return
			}
			if _, err := c.Write(part); err != nil {
				return
			}
			_ = c.(*net.TCPConn).CloseWrite()
		} else if _, err := c.Write([]byte("ok")); err != nil {
			return
		}
		_, _ = io.Copy(io.Discard, c)
	})
	p := startPair(t, slow.addr, pairOpts{aTimeouts: fmt.Sprintf("drain = %q\n", drain)})

	busy := dialFwd(t, p.fwd)
	if _, err := busy.Write([]byte("T")); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(busy, make([]byte, len(part))); err != nil {
		t.Fatalf("busy client, first half: %s", ended(err))
	}
	idle := dialFwd(t, p.fwd)
	if err := roundTripOK(idle); err != nil {
		t.Fatalf("idle client: %s", ended(err))
	}

	if err := p.a.Cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	waitLog(t, p.a, "draining live streams")
	// Draining: new connections are refused.
	if c, err := net.Dial("tcp", p.fwd); err == nil {
		c.Close()
		t.Fatal("a new connection to the forward was accepted while A drains")
	} else if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("a new connection while A drains: %v, want connection refused", err)
	}

	// The busy transfer finishes: every byte, and a clean end.
	close(release)
	n, took, err := readToEnd(busy, drain)
	if !errors.Is(err, io.EOF) || n != int64(len(part)) {
		t.Fatalf("busy client during the drain: %d bytes and %s, want %d bytes and a clean EOF", n, ended(err), len(part))
	}
	t.Logf("busy client: the rest of its transfer came %v after the release", took.Round(time.Millisecond))
	_ = busy.CloseWrite()
	// The idle one is reset when the drain time is over.
	if _, took, err := readToEnd(idle, drain+resetBound); !harness.IsReset(err) {
		t.Fatalf("idle client during the drain: %s, want a reset after %v", ended(err), drain)
	} else {
		t.Logf("idle client reset %v after the release (drain %v)", took.Round(time.Millisecond), drain)
	}
	p.a.WaitExit(t, syscall.SIGTERM.String())
	if log := p.a.Logs.String(); !strings.Contains(log, "drain time is over") || !strings.Contains(log, "streams=1") {
		t.Errorf("A's log does not say it reset the one stream left after the drain:\n%s", log)
	}
}

// roundTripOK sends 'I' to the drain test's target and expects "ok".
func roundTripOK(c net.Conn) error {
	if _, err := c.Write([]byte("I")); err != nil {
		return err
	}
	got := make([]byte, 2)
	if _, err := io.ReadFull(c, got); err != nil {
		return err
	}
	if string(got) != "ok" {
		return fmt.Errorf("got %q, want \"ok\"", got)
	}
	return nil
}

func TestFaultFDExhaustion(t *testing.T) {
	t.Parallel()
	echo := newTarget(t, echoHandler)
	p := startPair(t, echo.addr, pairOpts{})

	for _, tc := range []struct {
		name    string
		starved *harness.Daemon // the daemon whose descriptors run out
		log     string          // the advice it logs
		// event: the starved daemon reports each stream it refuses
		// (the listener's target dials, stream_failed target_dial). The
		// forward's accept loop resets a client before it is a stream,
		// so there the log line is the only report.
		event bool
	}{
		{"Forward", p.a, "out of file descriptors: client connection reset; raise the daemon's open-file limit (ulimit -n, or LimitNOFILE=", false},
		{"Listener", p.b, "target dial failed: out of file descriptors; stream reset (raise the daemon's open-file limit", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var events <-chan harness.Event
			if tc.event {
				events = tc.starved.Events(t) // before the descriptors run out
			}
			restore := limitFDs(t, tc.starved, 6)
			defer restore()
			clients := exhaust(t, p.fwd, 64)
			tc.starved.Running(t, "out of file descriptors")
			if tc.event {
				outOfFDs(t, events)
				// The event says why; the advice is in the log line, which
				// was written before the event.
				if !strings.Contains(tc.starved.Logs.String(), tc.log) {
					t.Errorf("the daemon did not log %q:\n%s", tc.log, tc.starved.Logs)
				}
			} else {
				waitLog(t, tc.starved, tc.log)
			}
			for _, c := range clients {
				c.Close()
			}
			untilEchoes(t, p.fwd, "clients closed")
			if _, errOut, code := p.a.CLI(t, "ls"); code != 0 {
				t.Errorf("ls once descriptors are free again: exit %d: %s", code, errOut)
			}
		})
	}
}

// TestFaultFDExhaustionAPIAnswers: with its descriptors used up by a
// peer's tunnels, a daemon still answers its owner, who can see the
// tunnels and deny the peer; the peer is then cut off and the descriptors
// come back.
func TestFaultFDExhaustionAPIAnswers(t *testing.T) {
	t.Parallel()
	echo := newTarget(t, echoHandler)
	p := startPair(t, echo.addr, pairOpts{})
	events := p.b.Events(t) // before the descriptors run out
	restore := limitFDs(t, p.b, 6)
	defer restore()
	clients := exhaust(t, p.fwd, 64)
	outOfFDs(t, events)
	out, errOut, code := p.b.CLI(t, "stream", "ls")
	if code != 0 || strings.Count(out, p.a.ID) < len(clients) {
		t.Fatalf("stream ls out of descriptors: exit %d, want the %d streams from A:\n%s%s", code, len(clients), out, errOut)
	}
	if _, errOut, code := p.b.CLI(t, "access", "deny", p.a.ID); code != 0 {
		t.Fatalf("access deny out of descriptors: exit %d: %s", code, errOut)
	}
	for i, c := range clients {
		if err := c.SetReadDeadline(time.Now().Add(resetBound)); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Read(make([]byte, 1)); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("client %d of the denied peer: read got %s, want its connection ended", i, ended(err))
		}
	}
	if _, errOut, code := p.b.CLI(t, "ls"); code != 0 {
		t.Fatalf("ls after the deny: exit %d: %s", code, errOut)
	}
}

// outOfFDs waits for the listener's event for a target dial that failed
// for want of a file descriptor.
func outOfFDs(t *testing.T, events <-chan harness.Event) {
	t.Helper()
	harness.NextEvent(t, events, recoverBound, "a stream_failed event for a target dial out of file descriptors", func(ev harness.Event) bool {
		return ev.Type == "stream_failed" && ev.Kind == "listen" && ev.Reason == "target_dial" && strings.Contains(ev.Error, "too many open files")
	})
}

// limitFDs lowers the daemon's open-file limit to what it uses now plus
// spare, and returns a function that restores the old limit.
func limitFDs(t *testing.T, d *harness.Daemon, spare int) (restore func()) {
	t.Helper()
	pid := d.Cmd.Process.Pid
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		t.Fatal(err)
	}
	// Only the soft limit: raising a hard limit again needs privileges.
	// Go raises the soft limit to the hard one once, at startup.
	var old unix.Rlimit
	if err := unix.Prlimit(pid, unix.RLIMIT_NOFILE, nil, &old); err != nil {
		t.Fatalf("prlimit: %v", err)
	}
	n := uint64(len(fds) + spare)
	if err := unix.Prlimit(pid, unix.RLIMIT_NOFILE, &unix.Rlimit{Cur: n, Max: old.Max}, nil); err != nil {
		t.Fatalf("prlimit: %v", err)
	}
	t.Logf("open-file limit of pid %d lowered to %d (%d open)", pid, n, len(fds))
	return func() {
		if err := unix.Prlimit(pid, unix.RLIMIT_NOFILE, &old, nil); err != nil {
			t.Errorf("restoring the open-file limit: %v", err)
		}
	}
}

// exhaust connects clients to a forward, each making a round trip and
// staying open, until one is reset; it fails the test if one hangs or if
// most clients all work. It returns the clients that work.
func exhaust(t *testing.T, fwd string, most int) []net.Conn {
	t.Helper()
	var ok []net.Conn
	for i := range most {
		c, err := net.Dial("tcp", fwd) // a reset may come before Dial returns
		if err == nil {
			t.Cleanup(func() { c.Close() })
			err = roundTrip(c, []byte("hello"), resetBound)
		}
		if err == nil {
			ok = append(ok, c)
			continue
		}
		if !harness.IsReset(err) {
			t.Fatalf("client %d, beyond the open-file limit: %s, want a reset", i+1, ended(err))
		}
		t.Logf("client %d reset: %d clients served", i+1, len(ok))
		return ok
	}
	t.Fatalf("all %d clients served: the open-file limit did not bite", most)
	return nil
}
