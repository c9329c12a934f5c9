//go:build unix

package node

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/protocol"

	"github.com/p2ptun/p2ptun/config"
	"github.com/p2ptun/p2ptun/config/homedir"
	"github.com/p2ptun/p2ptun/internal/harness"
	"github.com/p2ptun/p2ptun/internal/testnet"
	"github.com/p2ptun/p2ptun/spec"
)

// The stalled-tunnel tests: one side of a tunnel does not read, so the
// bridge's copy toward it is blocked in Write, and then the other side
// resets or goes away. The tunnel must end anyway, at both ends.

const stallProto = protocol.ID("/x/stall")

// stallAfter: a write to the far side that waits this long means that the
// far side has stopped taking data (its reader is not reading). It only
// decides when a writer stops pushing, never a verdict.
const stallAfter = 2 * time.Second

// tinyRcvbuf gives a socket the smallest receive buffer the kernel allows,
// so that a reader that does not read stalls its writer early.
func tinyRcvbuf(_, _ string, c syscall.RawConn) error {
	var serr error
	err := c.Control(func(fd uintptr) {
		serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 1)
	})
	return errors.Join(err, serr)
}

// heldConn is a target connection that the test holds without reading.
type heldConn struct {
	c    *net.TCPConn
	once sync.Once
	done chan struct{}
}

func (h *heldConn) release() { h.once.Do(func() { close(h.done) }) }

// stallTarget is a target that accepts and never reads.
type stallTarget struct {
	addr  string
	mu    sync.Mutex
	conns []*heldConn // accepted, not yet taken
	all   []*heldConn
}

func newStallTarget(t *testing.T) *stallTarget {
	t.Helper()
	st := &stallTarget{}
	st.addr = testnet.ServeWith(t, &net.ListenConfig{Control: tinyRcvbuf}, func(c *net.TCPConn) {
		h := &heldConn{c: c, done: make(chan struct{})}
		st.mu.Lock()
		st.conns = append(st.conns, h)
		st.all = append(st.all, h)
		st.mu.Unlock()
		<-h.done
	})
	// Before testnet's cleanup, which waits for the handlers.
	t.Cleanup(func() {
		st.mu.Lock()
		defer st.mu.Unlock()
		for _, h := range st.all {
			h.release()
		}
	})
	return st
}

// waiting reports how many connections were accepted since the last take.
func (st *stallTarget) waiting() int {
	st.mu.Lock()
	defer st.mu.Unlock()
	return len(st.conns)
}

// take returns the connections accepted since the last take.
func (st *stallTarget) take() []*heldConn {
	st.mu.Lock()
	defer st.mu.Unlock()
	c := st.conns
	st.conns = nil
	return c
}

// pushUntilStalled writes to s until the far side stops taking data (it
// reports true) or a write fails (false, with the error).
func pushUntilStalled(s network.Stream) (bool, error) {
	buf := make([]byte, 64<<10)
	for {
		_ = s.SetWriteDeadline(time.Now().Add(stallAfter))
		if _, err := s.Write(buf); err != nil {
			if isTimeout(err) {
				return true, nil
			}
			return false, err
		}
	}
}

// endsWithReset reads c to its end (what it holds was written before the
// tunnel ended) and reports how it ended, failing on a hang.
func endsWithReset(c *net.TCPConn) error {
	_ = c.SetReadDeadline(time.Now().Add(hangGuard))
	n, err := io.Copy(io.Discard, c)
	if !harness.IsReset(err) {
		return fmt.Errorf("read %d bytes, then err = %v; want a connection reset", n, err)
	}
	return nil
}

// TestHostileResetsWhileTargetNotReading: the hostile peer opens streams to
// a target that never reads, fills them until the victim's writes to the
// target block, and resets them; it does this round after round. Each
// round, the victim bridges listener_peer_streams of them and refuses the
// rest, and the resets end every bridge and its target connection while
// the peer is still connected, so the next round gets the whole cap again.
func TestHostileResetsWhileTargetNotReading(t *testing.T) {
	const capStreams, perRound, rounds = 20, 50, 3
	a := newArena(t, arenaOpts{limits: config.Limits{
		ListenerPeerStreams: capStreams, PeerStreams: 4 * perRound,
		PeerStreamRate: 1e9, PeerStreamBurst: 1e9,
	}})
	target := newStallTarget(t)
	ctx := context.Background()
	if _, err := a.victim.listenReq(ctx, spec.Request{Protocol: string(stallProto), Target: target.addr, Allow: []string{a.badID.String()}}); err != nil {
		t.Fatal(err)
	}
	for round := range rounds {
		var held []network.Stream
		var stalled, refused atomic.Int64
		var errs errSample
		var wg sync.WaitGroup
		for range perRound {
			octx, cancel := context.WithTimeout(ctx, hangGuard)
			s, err := a.bad.NewStream(octx, a.victimID, stallProto)
			cancel()
			if err != nil {
				refused.Add(1)
				continue
			}
			held = append(held, s)
			wg.Go(func() {
				ok, err := pushUntilStalled(s)
				if ok {
					stalled.Add(1)
					return
				}
				refused.Add(1)
				errs.add(err)
			})
		}
		wg.Wait()
		// The victim's registry is the authority on what it bridged; a
		// refused stream whose reset came late may pass for stalled.
		if n := a.badStreams(); n != capStreams {
			t.Fatalf("round %d: victim lists %d streams from the hostile peer while they are alive, want %d (listener_peer_streams); %d stalled, %d refused: %s",
				round, n, capStreams, stalled.Load(), refused.Load(), &errs)
		}
		if n := stalled.Load(); n < capStreams {
			t.Fatalf("round %d: only %d streams took data until the target stalled them, want %d; %d refused: %s",
				round, n, capStreams, refused.Load(), &errs)
		}

		for _, s := range held {
			_ = s.Reset()
		}
		// The hostile host stays connected: the resets alone must end
		// the bridges, although their target never reads.
		waitFor(t, fmt.Sprintf("round %d: victim streams after the resets", round), func() (bool, string) {
			n := a.badStreams()
			return n == 0, fmt.Sprintf("%d live streams from the hostile peer", n)
		})
		waitFor(t, fmt.Sprintf("round %d: target connections", round), func() (bool, string) {
			n := target.waiting()
			return n >= capStreams, fmt.Sprintf("%d accepted, want %d", n, capStreams)
		})
		conns := target.take()
		if len(conns) != capStreams {
			t.Errorf("round %d: target accepted %d connections, want %d", round, len(conns), capStreams)
		}
		for i, h := range conns {
			if err := endsWithReset(h.c); err != nil {
				t.Errorf("round %d: target connection %d: %v", round, i, err)
			}
			h.release()
		}
	}
	if n := len(a.victim.Host().Network().ConnsToPeer(a.badID)); n == 0 {
		t.Error("the victim dropped the hostile peer's connection; the resets alone should end the streams")
	}
	a.finish(t)
}

// TestForwardClientNotReadingRemoteGone: a forward's client does not read,
// so the forward's copy toward it is blocked, when the remote resets the
// stream or goes away altogether. The forward must reset the client and
// drop the stream from the registry without waiting for the client to
// read.
func TestForwardClientNotReadingRemoteGone(t *testing.T) {
	for _, tc := range []struct {
		name  string
		reset bool // the remote resets the stream and stays; else it closes its host
	}{{"remote resets the stream", true}, {"remote host closes", false}} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			local := newNode(t)
			key, err := homedir.GenerateKey()
			if err != nil {
				t.Fatal(err)
			}
			remote := newHostile(t, key)
			stalled := make(chan error, 1)
			remote.SetStreamHandler(stallProto, func(s network.Stream) {
				ok, err := pushUntilStalled(s)
				if err == nil && !ok {
					err = errors.New("not stalled")
				}
				if tc.reset {
					_ = s.Reset()
				}
				stalled <- err
			})
			l, err := local.forwardReq(ctx, spec.Request{Protocol: string(stallProto), ListenAddress: "/ip4/127.0.0.1/tcp/0",
				Peer: fmt.Sprintf("%s/p2p/%s", remote.Addrs()[0], remote.ID())})
			if err != nil {
				t.Fatal(err)
			}
			base := measure()

			d := net.Dialer{Control: tinyRcvbuf, Timeout: hangGuard}
			c, err := d.Dial("tcp", hostPort(t, l.ListenAddress))
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			select {
			case err := <-stalled:
				if err != nil {
					t.Fatalf("remote pushing to the client: %v", err)
				}
			case <-time.After(hangGuard):
				t.Fatal("remote never stalled on the client that does not read")
			}
			if !tc.reset {
				if n := len(local.Streams()); n != 1 {
					t.Fatalf("%d streams listed, want the client's 1", n)
				}
				if err := remote.Close(); err != nil {
					t.Fatal(err)
				}
			}
			waitFor(t, "the forward's stream after the remote ended it", func() (bool, string) {
				n := len(local.Streams())
				return n == 0, fmt.Sprintf("%d streams listed", n)
			})
			if err := endsWithReset(c.(*net.TCPConn)); err != nil {
				t.Errorf("client: %v", err)
			}
			c.Close()
			if tc.reset {
				if n := len(local.Host().Network().ConnsToPeer(remote.ID())); n == 0 {
					t.Error("the connection to the remote is gone; the reset alone should end the stream")
				}
				remote.Close()
			}
			expectNoLeaks(t, base)
		})
	}
}
