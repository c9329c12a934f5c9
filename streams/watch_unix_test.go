//go:build unix

package streams

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/p2ptun/p2ptun/internal/harness"
)

// hangGuard bounds a wait that only a bug makes long; the verdict never
// depends on it.
const hangGuard = 30 * time.Second

// tinyPair is tcpPair with the smallest socket buffers the kernel allows,
// set before the connection exists, so that a reader that does not read
// blocks its writer after a few KiB.
func tinyPair(t *testing.T) (client, server *net.TCPConn) {
	t.Helper()
	small := func(_, _ string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) {
			serr = errors.Join(
				syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 1),
				syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_SNDBUF, 1))
		})
		return errors.Join(err, serr)
	}
	return tcpPairControl(t, small)
}

// writeUntilFail writes to c until a write fails, counting what it wrote.
func writeUntilFail(c *net.TCPConn, wrote *atomic.Int64) {
	buf := make([]byte, 16<<10)
	for {
		n, err := c.Write(buf)
		wrote.Add(int64(n))
		if err != nil {
			return
		}
	}
}

// The far end of one side resets while the bridge's copy toward the other
// side is blocked in Write, because that side does not read. Nothing reads
// the reset end any more, so only the blocked copy can notice: the bridge
// must end, and the side that does not read must see a reset.
func TestBridgeResetWhileOtherSideNotReading(t *testing.T) {
	for _, tc := range []struct {
		name string
		// flip makes the writing side the bridge's b instead of its a.
		flip bool
	}{{"a resets, b not reading", false}, {"b resets, a not reading", true}} {
		t.Run(tc.name, func(t *testing.T) {
			writer, a := tcpPair(t)
			idle, b := tinyPair(t)
			var toIdle atomic.Int64
			c := Counters{AtoB: &toIdle}
			x, y := HalfCloser(a), HalfCloser(b)
			if tc.flip {
				x, y = y, x
				c = Counters{BtoA: &toIdle}
			}
			done := make(chan result, 1)
			go func() {
				n, m, err := bridge(context.Background(), x, y, c)
				done <- result{n, m, err}
			}()

			var wrote atomic.Int64
			var wg sync.WaitGroup
			wg.Go(func() { writeUntilFail(writer, &wrote) })
			// Enough in flight that the bridge holds more than the idle
			// side's buffers take: its write to that side blocks.
			harness.Until(t, hangGuard, "the writer to get 1 MiB into the bridge", func() bool { return wrote.Load() >= 1<<20 })
			writer.SetLinger(0)
			writer.Close()
			wg.Wait()

			select {
			case r := <-done:
				if r.err == nil {
					t.Fatal("Bridge returned nil after a reset")
				}
				t.Logf("bridge ended: %v (%d bytes reached the idle side)", r.err, toIdle.Load())
			case <-time.After(hangGuard):
				t.Fatalf("bridge still running %v after the reset; %d bytes reached the idle side, which does not read", hangGuard, toIdle.Load())
			}
			// The idle side gets what was written to it, then a reset.
			_ = idle.SetReadDeadline(time.Now().Add(hangGuard))
			if _, err := io.Copy(io.Discard, idle); !harness.IsReset(err) {
				t.Fatalf("idle side read: err = %v, want a connection reset", err)
			}
		})
	}
}

// A reader that is slow but alive is never mistaken for a dead one: with
// the probe firing every millisecond, every byte arrives, in order, and
// the bridge ends cleanly; from a source that is a socket (probed through
// SO_ERROR) and from one that is read like a libp2p stream (probed with a
// one-byte read, which the bridge must pass on after the blocked write).
func TestBridgeSlowReaderGetsEverything(t *testing.T) {
	defer setProbeInterval(time.Millisecond)()
	data := randBytes(t, 2<<20)
	for _, tc := range []struct {
		name string
		src  func(t *testing.T) HalfCloser
	}{
		{"socket source", func(t *testing.T) HalfCloser {
			left, a := tcpPair(t)
			var wg sync.WaitGroup
			t.Cleanup(func() { left.Close(); wg.Wait() }) // the close ends a write the test gave up on
			wg.Go(func() {
				left.Write(data)
				left.CloseWrite()
			})
			return a
		}},
		{"stream source", func(t *testing.T) HalfCloser {
			m := &memStream{data: data}
			t.Cleanup(func() { t.Logf("%d probes read a byte ahead", m.probes()) })
			return m
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			right, b := tinyPair(t)
			done := make(chan result, 1)
			go func() {
				n, m, err := bridge(context.Background(), tc.src(t), b, Counters{})
				done <- result{n, m, err}
			}()
			var got bytes.Buffer
			buf := make([]byte, 512) // small reads: the bridge's writes keep blocking
			for {
				n, err := right.Read(buf)
				got.Write(buf[:n])
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Fatalf("read after %d bytes: %v", got.Len(), err)
				}
			}
			if !bytes.Equal(got.Bytes(), data) {
				t.Fatalf("got %d bytes, want the %d sent, in order", got.Len(), len(data))
			}
			right.CloseWrite()
			r := <-done
			if r.err != nil {
				t.Fatalf("Bridge error = %v, want nil", r.err)
			}
			if r.aToB != int64(len(data)) {
				t.Fatalf("Bridge counted %d bytes, want %d", r.aToB, len(data))
			}
		})
	}
}

// memStream is a bridge end read like a libp2p stream (no socket under
// it) that always has its next bytes ready: a Read under a past deadline
// returns one byte, as a yamux stream with data buffered does. Writes are
// discarded.
type memStream struct {
	mu     sync.Mutex
	data   []byte
	past   bool // the read deadline has passed
	probed int  // reads under a past deadline
	closed bool
}

func (m *memStream) Read(p []byte) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return 0, net.ErrClosed
	}
	if len(m.data) == 0 {
		return 0, io.EOF
	}
	n := len(p)
	if m.past {
		m.probed++
		n = min(n, 1)
	}
	n = copy(p[:n], m.data)
	m.data = m.data[n:]
	return n, nil
}

func (m *memStream) probes() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.probed
}

func (m *memStream) SetReadDeadline(t time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.past = !t.IsZero() && t.Before(time.Now())
	return nil
}

func (m *memStream) Write(p []byte) (int, error) { return len(p), nil }
func (m *memStream) CloseWrite() error           { return nil }
func (m *memStream) Close() error                { m.mu.Lock(); m.closed = true; m.mu.Unlock(); return nil }

// setProbeInterval sets probeInterval and returns what restores it.
func setProbeInterval(d time.Duration) func() {
	old := probeInterval
	probeInterval = d
	return func() { probeInterval = old }
}
