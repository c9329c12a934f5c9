//go:build linux

package main

// One forward, several peers (issue 14), through real daemons: two
// listeners serve the same protocol, a forward has both, and a steady
// load of new connections goes on while one listener is killed
// (SIGKILL) and brought back on the same identity and port.

import (
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/p2ptun/p2ptun/internal/harness"
	"github.com/p2ptun/p2ptun/internal/testnet"
)

// The phases of the load, as the test moves it on; a connection counts in
// the phase it started in, or in the switch-over window if it was in
// flight when the window began.
const (
	phaseUp     = iota // both listeners up
	phaseWindow        // the first listener killed; its down event not seen yet
	phaseDown          // its down event seen: the switch-over is done
	phaseBack          // restarted, and its up event seen
	phases
)

var phaseNames = [phases]string{"both up", "switch-over window", "after the down event", "after the up event"}

// load makes one new connection after another to a forward, each an echo
// round trip, and counts them by phase.
type load struct {
	addr  string
	phase atomic.Int32
	stop  chan struct{}
	done  chan struct{}

	mu       sync.Mutex
	ok, fail [phases]int
	firstErr [phases]error
}

func startLoad(t *testing.T, addr string) *load {
	l := &load{addr: addr, stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(l.done)
		for {
			select {
			case <-l.stop:
				return
			default:
			}
			p := l.phase.Load()
			err := echoOnce(l.addr)
			if p < phaseWindow && l.phase.Load() >= phaseWindow {
				p = phaseWindow // in flight at the kill
			}
			l.mu.Lock()
			if err == nil {
				l.ok[p]++
			} else {
				l.fail[p]++
				if l.firstErr[p] == nil {
					l.firstErr[p] = err
				}
			}
			l.mu.Unlock()
		}
	}()
	t.Cleanup(l.end)
	return l
}

// end stops the load and waits for its last connection.
func (l *load) end() {
	select {
	case <-l.stop:
	default:
		close(l.stop)
	}
	<-l.done
}

// count is how many connections of phase p have ended, ok or not.
func (l *load) count(p int) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.ok[p] + l.fail[p]
}

// echoOnce makes one connection, has 64 random bytes echoed (roundTrip)
// and closes. Its bound only keeps a hang from stalling the test.
func echoOnce(addr string) error {
	c, err := net.DialTimeout("tcp", addr, 20*time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	msg := make([]byte, 64)
	_, _ = rand.Read(msg)
	return roundTrip(c, msg, 20*time.Second)
}

// peerWatch follows the forward daemon's events: the stream_open events'
// peers, and its peers going down and up.
type peerWatch struct {
	mu     sync.Mutex
	opens  map[string]int
	change chan harness.Event // forward_peer_down and forward_peer_up
}

func watchPeers(t *testing.T, d *harness.Daemon) *peerWatch {
	w := &peerWatch{opens: map[string]int{}, change: make(chan harness.Event, 64)}
	done := make(chan struct{})
	t.Cleanup(func() { <-done }) // before Events' own clean-up, which ends the feed
	events := d.Events(t)
	go func() {
		defer close(done)
		for ev := range events {
			switch ev.Type {
			case "stream_open":
				w.mu.Lock()
				w.opens[ev.Peer]++
				w.mu.Unlock()
			case "forward_peer_down", "forward_peer_up":
				select {
				case w.change <- ev:
				default:
					t.Errorf("peer change %+v not read", ev)
				}
			case "events_lost":
				t.Errorf("the events subscription fell behind")
			}
		}
	}()
	return w
}

func (w *peerWatch) opened(p string) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.opens[p]
}

// next waits for the change typ of peer p.
func (w *peerWatch) next(t *testing.T, typ, p string) harness.Event {
	t.Helper()
	return harness.NextEvent(t, w.change, 60*time.Second, typ+" of "+p, func(ev harness.Event) bool {
		return ev.Type == typ && ev.Peer == p
	})
}

// lsPeers is `ls --json`'s entry for the forward: its balance and peers.
type lsPeers struct {
	Balance string
	Peers   []struct{ Peer, State, Error string }
}

func forwardPeers(t *testing.T, d *harness.Daemon) lsPeers {
	t.Helper()
	out, errOut, code := d.CLI(t, "ls", "--json")
	if code != 0 {
		t.Fatalf("ls --json: exit %d: %s", code, errOut)
	}
	var ls struct{ Listeners []lsPeers }
	if err := json.Unmarshal([]byte(out), &ls); err != nil || len(ls.Listeners) != 1 {
		t.Fatalf("ls --json: %v: %s", err, out)
	}
	return ls.Listeners[0]
}

// startEchoListener starts a daemon on a fixed swarm port (so that it can
// come back on it) serving /x/echo to the peer allow.
func startEchoListener(t *testing.T, echo, allow string) *harness.Daemon {
	home, _ := harness.InitHome(t, nil)
	// The load is as fast as the machine allows; this test is about
	// failover, so the listener's per-peer rate must never be what
	// refuses a connection (1,000/s by default could, on a fast machine).
	harness.WriteConfig(t, home, fmt.Sprintf("[limits]\nnamed_peer_stream_rate = 1000000.0\nnamed_peer_stream_burst = 1000000\n\n[[listen]]\nprotocol = \"/x/echo\"\ntarget = %q\nallow = [%q]\n", echo, allow))
	return harness.Start(t, harness.Spec{
		Home: home, ListenAddr: fmt.Sprintf("/ip4/127.0.0.1/tcp/%d", testnet.FreePort(t)), Life: 5 * time.Minute,
	})
}

// TestForwardSeveralPeersSurvivesAKill: a forward with two peers keeps
// every new connection working while one peer's daemon is killed
// mid-load: the connections started once the forward has reported the
// peer down all succeed (those in flight at the kill may fail: they are
// counted and logged). The killed daemon, started again on the same
// identity and port, is redialed and gets connections again: it takes
// over again under failover, and takes its turn under round-robin.
// Failover is set up from the command line, round-robin from a config
// table through reload.
func TestForwardSeveralPeersSurvivesAKill(t *testing.T) {
	for _, policy := range []string{"failover", "round-robin"} {
		t.Run(policy, func(t *testing.T) {
			echo := testnet.Serve(t, testnet.Echo)
			fHome, fID := harness.InitHome(t, nil)
			l1 := startEchoListener(t, echo, fID)
			l2 := startEchoListener(t, echo, fID)
			f := harness.Start(t, harness.Spec{Home: fHome, Life: 5 * time.Minute})
			w := watchPeers(t, f)

			var fwd string
			if policy == "failover" {
				out, errOut, code := f.CLI(t, "forward", "/x/echo", "127.0.0.1:0", l1.Addresses[0], l2.Addresses[0], "--save", "--name", "echo")
				if code != 0 {
					t.Fatalf("forward: exit %d: %s", code, errOut)
				}
				fwd = harness.HostPort(t, strings.TrimSpace(out))
				// Saved as a [[forward]] with its peers, which a reload
				// leaves running.
				saved, err := os.ReadFile(filepath.Join(fHome, "config.toml"))
				if err != nil || !strings.Contains(string(saved), "peers = [") || !strings.Contains(string(saved), l1.Addresses[0]) ||
					!strings.Contains(string(saved), l2.Addresses[0]) || strings.Contains(string(saved), "peer = \"\"") {
					t.Errorf("config.toml after forward --save (%v):\n%s", err, saved)
				}
				out, errOut, code = f.CLI(t, "reload", "--json")
				if code != 0 || !strings.Contains(out, `"Unchanged": [
    "echo"
  ]`) {
					t.Errorf("reload after --save: exit %d: %s%s", code, out, errOut)
				}
			} else {
				harness.WriteConfig(t, fHome, fmt.Sprintf("[[forward]]\nname = \"echo\"\nprotocol = \"/x/echo\"\nlisten = \"127.0.0.1:0\"\npeers = [%q, %q]\nbalance = %q\n",
					l1.Addresses[0], l2.Addresses[0], policy))
				if _, errOut, code := f.CLI(t, "reload"); code != 0 {
					t.Fatalf("reload: exit %d: %s", code, errOut)
				}
				if _, errOut, code := f.CLI(t, "wait", "--timeout", "30s"); code != 0 {
					t.Fatalf("wait: exit %d: %s", code, errOut)
				}
				out, _, _ := f.CLI(t, "ls", "--json")
				var ls struct {
					Listeners []struct{ ListenAddress string }
				}
				if err := json.Unmarshal([]byte(out), &ls); err != nil || len(ls.Listeners) != 1 {
					t.Fatalf("ls --json: %v: %s", err, out)
				}
				fwd = harness.HostPort(t, ls.Listeners[0].ListenAddress)
			}
			f.Until(t, 30*time.Second, "both peers up", func() bool {
				ps := forwardPeers(t, f)
				return len(ps.Peers) == 2 && ps.Peers[0].State == "up" && ps.Peers[1].State == "up"
			})
			if ps := forwardPeers(t, f); ps.Balance != policy || ps.Peers[0].Peer != l1.ID || ps.Peers[1].Peer != l2.ID {
				t.Fatalf("ls --json: %+v, want %s over %s then %s", ps, policy, l1.ID, l2.ID)
			}

			// A held connection: `stream ls` names the peer it went to.
			held, err := net.Dial("tcp", fwd)
			if err != nil {
				t.Fatal(err)
			}
			defer held.Close()
			if err := roundTrip(held, []byte("held"), 20*time.Second); err != nil {
				t.Fatalf("held connection: %v", err)
			}
			out, _, _ := f.CLI(t, "stream", "ls", "--json")
			var sl struct {
				Streams []struct{ Peer, TargetAddress string }
			}
			if err := json.Unmarshal([]byte(out), &sl); err != nil || len(sl.Streams) != 1 {
				t.Fatalf("stream ls --json: %v: %s", err, out)
			}
			if s := sl.Streams[0]; (policy == "failover" && s.Peer != l1.ID) || (s.Peer != l1.ID && s.Peer != l2.ID) || s.TargetAddress != "/p2p/"+s.Peer {
				t.Errorf("stream ls: %+v, want a stream to %s (failover) or one of the two", s, l1.ID)
			}
			held.Close()

			ld := startLoad(t, fwd)
			harness.Until(t, 60*time.Second, "20 connections with both peers up", func() bool { return ld.count(phaseUp) >= 20 })
			if policy == "round-robin" {
				f.Until(t, 30*time.Second, "connections to both peers", func() bool { return w.opened(l1.ID) > 0 && w.opened(l2.ID) > 0 })
			}

			ld.phase.Store(phaseWindow)
			l1.Kill(t)
			down := w.next(t, "forward_peer_down", l1.ID)
			ld.phase.Store(phaseDown)
			if down.Error == "" {
				t.Errorf("forward_peer_down says no why: %+v", down)
			}
			toL2 := w.opened(l2.ID)
			harness.Until(t, 60*time.Second, "50 connections after the down event", func() bool { return ld.count(phaseDown) >= 50 })
			if w.opened(l2.ID) <= toL2 {
				t.Errorf("no connection went to %s after %s went down", l2.ID, l1.ID)
			}
			if ps := forwardPeers(t, f); ps.Peers[0].State != "down" || ps.Peers[0].Error == "" || ps.Peers[1].State != "up" {
				t.Errorf("ls --json after the kill: %+v, want %s down with why, %s up", ps, l1.ID, l2.ID)
			}
			if out, _, _ := f.CLI(t, "ls"); !strings.Contains(out, "/p2p/"+l1.ID+"=down,/p2p/"+l2.ID+"=up") {
				t.Errorf("ls does not show the peers' states:\n%s", out)
			}

			l1 = l1.Restart(t) // same HOME: same identity and port
			w.next(t, "forward_peer_up", l1.ID)
			toL1 := w.opened(l1.ID)
			ld.phase.Store(phaseBack)
			f.Until(t, 60*time.Second, "connections to the restarted peer", func() bool { return w.opened(l1.ID) >= toL1+10 })
			harness.Until(t, 60*time.Second, "20 connections after the up event", func() bool { return ld.count(phaseBack) >= 20 })
			ld.end()

			for p := range phases {
				t.Logf("%s: %d connections, %d failed (first: %v)", phaseNames[p], ld.ok[p]+ld.fail[p], ld.fail[p], ld.firstErr[p])
			}
			for _, p := range []int{phaseUp, phaseDown, phaseBack} {
				if ld.fail[p] != 0 {
					t.Errorf("%s: %d of %d connections failed, want none (first: %v)", phaseNames[p], ld.fail[p], ld.ok[p]+ld.fail[p], ld.firstErr[p])
				}
			}
		})
	}
}
