package streams

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"

	"go.uber.org/goleak"

	"github.com/p2ptun/p2ptun/internal/harness"
)

// bridge runs a Pipe between a and b as the tunnel does and waits for it;
// the end of ctx aborts it.
func bridge(ctx context.Context, a, b HalfCloser, c Counters) (aToB, bToA int64, err error) {
	p := New(a, b, c)
	stop := context.AfterFunc(ctx, p.Abort)
	defer stop()
	done := make(chan struct{})
	p.Start(func(x, y int64, e error) {
		aToB, bToA, err = x, y, e
		close(done)
	})
	<-done
	return aToB, bToA, err
}

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// tcpPair returns the two ends of a loopback TCP connection.
func tcpPair(t testing.TB) (client, server *net.TCPConn) {
	return tcpPairControl(t, nil)
}

// tcpPairControl is tcpPair with control run on both sockets before they
// connect (to set their buffer sizes, say).
func tcpPairControl(t testing.TB, control func(network, address string, c syscall.RawConn) error) (client, server *net.TCPConn) {
	t.Helper()
	ln, err := (&net.ListenConfig{Control: control}).Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c, err := (&net.Dialer{Control: control}).Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	s, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(); s.Close() })
	return c.(*net.TCPConn), s.(*net.TCPConn)
}

type result struct {
	aToB, bToA int64
	err        error
}

// bridged starts Bridge between two TCP pairs and returns the outer ends:
// left talks to the bridge's a, right to its b. The bridge reads its ends
// as sockets (rawCopy).
func bridged(t *testing.T, ctx context.Context, c Counters) (left, right *net.TCPConn, done <-chan result) {
	t.Helper()
	return bridgedAs(t, ctx, c, func(c *net.TCPConn) HalfCloser { return c })
}

// plainEnd hides a socket's SyscallConn, so that the bridge reads it as it
// reads a libp2p stream: into a buffer held across Read.
type plainEnd struct{ HalfCloser }

func (p plainEnd) SetLinger(sec int) error { return p.HalfCloser.(*net.TCPConn).SetLinger(sec) }

func bridgedPlain(t *testing.T, ctx context.Context, c Counters) (left, right *net.TCPConn, done <-chan result) {
	t.Helper()
	return bridgedAs(t, ctx, c, func(c *net.TCPConn) HalfCloser { return plainEnd{c} })
}

func bridgedAs(t *testing.T, ctx context.Context, c Counters, end func(*net.TCPConn) HalfCloser) (left, right *net.TCPConn, done <-chan result) {
	t.Helper()
	left, a := tcpPair(t)
	right, b := tcpPair(t)
	ch := make(chan result, 1)
	go func() {
		x, y, err := bridge(ctx, end(a), end(b), c)
		ch <- result{x, y, err}
	}()
	return left, right, ch
}

// bothReads runs a test once with each way of reading an end.
func bothReads(t *testing.T, test func(*testing.T, func(*testing.T, context.Context, Counters) (*net.TCPConn, *net.TCPConn, <-chan result))) {
	t.Run("socket", func(t *testing.T) { test(t, bridged) })
	t.Run("stream", func(t *testing.T) { test(t, bridgedPlain) })
}

func randBytes(t *testing.T, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

func TestBridgeCopiesBothWaysAndCounts(t *testing.T) {
	bothReads(t, func(t *testing.T, bridged func(*testing.T, context.Context, Counters) (*net.TCPConn, *net.TCPConn, <-chan result)) {
		in, out := new(atomic.Int64), new(atomic.Int64)
		left, right, done := bridged(t, context.Background(), Counters{AtoB: out, BtoA: in})
		x, y := randBytes(t, 1<<20+7), randBytes(t, 300<<10)

		errc := make(chan error, 2)
		go func() { _, err := left.Write(x); errc <- errors.Join(err, left.CloseWrite()) }()
		go func() { _, err := right.Write(y); errc <- errors.Join(err, right.CloseWrite()) }()
		gotAtRight, err := io.ReadAll(right)
		if err != nil {
			t.Fatal(err)
		}
		gotAtLeft, err := io.ReadAll(left)
		if err != nil {
			t.Fatal(err)
		}
		for range 2 {
			if err := <-errc; err != nil {
				t.Fatal(err)
			}
		}
		if !bytes.Equal(gotAtRight, x) || !bytes.Equal(gotAtLeft, y) {
			t.Fatalf("bytes differ: right got %d/%d, left got %d/%d", len(gotAtRight), len(x), len(gotAtLeft), len(y))
		}
		r := <-done
		if r.err != nil {
			t.Fatalf("Bridge error = %v, want nil after clean EOFs", r.err)
		}
		if r.aToB != int64(len(x)) || r.bToA != int64(len(y)) {
			t.Fatalf("Bridge counts = %d, %d; want %d, %d", r.aToB, r.bToA, len(x), len(y))
		}
		if out.Load() != int64(len(x)) || in.Load() != int64(len(y)) {
			t.Fatalf("counters = %d, %d; want %d, %d", out.Load(), in.Load(), len(x), len(y))
		}
	})
}

// The case kubo's startStreaming and chisel's Pipe get wrong: the client
// half-closes after its request and must still receive the whole reply.
func TestBridgeHalfCloseKeepsReplyFlowing(t *testing.T) {
	bothReads(t, func(t *testing.T, bridged func(*testing.T, context.Context, Counters) (*net.TCPConn, *net.TCPConn, <-chan result)) {
		left, right, done := bridged(t, context.Background(), Counters{})
		req := []byte("GET / HTTP/1.0\r\n\r\n")
		reply := randBytes(t, 4<<20)

		if _, err := left.Write(req); err != nil {
			t.Fatal(err)
		}
		if err := left.CloseWrite(); err != nil {
			t.Fatal(err)
		}
		// The server sees the request and then EOF...
		got, err := io.ReadAll(right)
		if err != nil || !bytes.Equal(got, req) {
			t.Fatalf("server read %q, %v; want the request then EOF", got, err)
		}
		// ...and only then writes its reply.
		wrote := make(chan error, 1)
		go func() {
			_, err := right.Write(reply)
			wrote <- errors.Join(err, right.CloseWrite())
		}()
		gotReply, err := io.ReadAll(left)
		if err != nil {
			t.Fatal(err)
		}
		if err := <-wrote; err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(gotReply, reply) {
			t.Fatalf("client got %d of %d reply bytes", len(gotReply), len(reply))
		}
		if r := <-done; r.err != nil {
			t.Fatalf("Bridge error = %v", r.err)
		}
	})
}

func TestBridgeResetPropagates(t *testing.T) {
	bothReads(t, func(t *testing.T, bridged func(*testing.T, context.Context, Counters) (*net.TCPConn, *net.TCPConn, <-chan result)) {
		left, right, done := bridged(t, context.Background(), Counters{})
		// Move some data first so the bridge is mid-stream.
		if _, err := left.Write([]byte("ping")); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 4)
		if _, err := io.ReadFull(right, buf); err != nil {
			t.Fatal(err)
		}
		// The right side aborts.
		right.SetLinger(0)
		right.Close()

		_, err := io.ReadAll(left)
		if !harness.IsReset(err) {
			t.Fatalf("left read after remote abort: err = %v, want a connection reset (never a clean EOF)", err)
		}
		r := <-done
		if r.err == nil {
			t.Fatal("Bridge returned nil after a reset")
		}
	})
}

func TestBridgeCancelAbortsBothEnds(t *testing.T) {
	bothReads(t, func(t *testing.T, bridged func(*testing.T, context.Context, Counters) (*net.TCPConn, *net.TCPConn, <-chan result)) {
		ctx, cancel := context.WithCancel(context.Background())
		left, right, done := bridged(t, ctx, Counters{})
		if _, err := left.Write([]byte("x")); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(right, make([]byte, 1)); err != nil {
			t.Fatal(err)
		}
		cancel()
		r := <-done
		if !errors.Is(r.err, ErrAborted) {
			t.Fatalf("Bridge error = %v, want ErrAborted", r.err)
		}
		for name, c := range map[string]*net.TCPConn{"left": left, "right": right} {
			if _, err := io.ReadAll(c); !harness.IsReset(err) {
				t.Errorf("%s read after cancel: err = %v, want a connection reset", name, err)
			}
		}
	})
}

func TestBridgeWithCancelledContextReturnsAtOnce(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, _, done := bridged(t, ctx, Counters{})
	if r := <-done; !errors.Is(r.err, ErrAborted) {
		t.Fatalf("Bridge error = %v, want ErrAborted", r.err)
	}
}

func BenchmarkBridgeTCP(b *testing.B) {
	left, a := tcpPair(b)
	right, bb := tcpPair(b)
	bridged := make(chan struct{})
	go func() { bridge(context.Background(), a, bb, Counters{}); close(bridged) }()
	drained := make(chan struct{})
	go func() { io.Copy(io.Discard, right); close(drained) }()
	buf := make([]byte, 64<<10)
	b.SetBytes(int64(len(buf)))
	b.ResetTimer()
	for range b.N {
		if _, err := left.Write(buf); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	left.Close()
	right.Close()
	<-bridged
	<-drained
}

// eofEnd is an in-memory bridge end with nothing to send: Read returns
// EOF at once, writes and closes succeed.
type eofEnd struct{}

func (eofEnd) Read([]byte) (int, error)    { return 0, io.EOF }
func (eofEnd) Write(p []byte) (int, error) { return len(p), nil }
func (eofEnd) Close() error                { return nil }
func (eofEnd) CloseWrite() error           { return nil }

// BenchmarkBridgeSetup measures what one Bridge costs apart from the
// bytes: its goroutines, buffers and bookkeeping (see allocs/op), the
// per-tunnel price paid by every new connection.
func BenchmarkBridgeSetup(b *testing.B) {
	ctx := context.Background()
	b.ReportAllocs()
	for range b.N {
		if _, _, err := bridge(ctx, eofEnd{}, eofEnd{}, Counters{}); err != nil {
			b.Fatal(err)
		}
	}
}

// Mixed small and large writes make the copy move between its small and
// big buffers; many bridges at once share the pools. Every byte must
// arrive in order.
func TestBridgeBufferSwitchingKeepsBytesIntact(t *testing.T) {
	bothReads(t, func(t *testing.T, bridged func(*testing.T, context.Context, Counters) (*net.TCPConn, *net.TCPConn, <-chan result)) {
		var wg sync.WaitGroup
		for i := range 16 {
			left, right, done := bridged(t, context.Background(), Counters{})
			data := randBytes(t, 1<<20)
			sizes := []int{1, smallSize, smallSize - 1, 40000, 10, 70000, 3, midSize, bufSize, midSize + 1, smallSize + 1, bufSize + 7}
			wg.Go(func() {
				off := 0
				for k := 0; off < len(data); k++ {
					n := min(sizes[(k+i)%len(sizes)], len(data)-off)
					if _, err := left.Write(data[off : off+n]); err != nil {
						t.Errorf("bridge %d: write: %v", i, err)
						return
					}
					off += n
				}
				left.CloseWrite()
			})
			wg.Go(func() {
				got, err := io.ReadAll(right)
				if err != nil || !bytes.Equal(got, data) {
					t.Errorf("bridge %d: got %d bytes (err %v), want the %d sent, in order", i, len(got), err, len(data))
				}
				right.CloseWrite()
				<-done
			})
		}
		wg.Wait()
	})
}

// A pipe aborted before it starts (its stream was closed in the instant
// between registering and starting) ends at once, both ends closed.
func TestPipeAbortedBeforeStart(t *testing.T) {
	left, a := tcpPair(t)
	right, b := tcpPair(t)
	p := New(a, b, Counters{})
	p.Abort()
	done := make(chan error, 1)
	p.Start(func(_, _ int64, err error) { done <- err })
	if err := <-done; !errors.Is(err, ErrAborted) {
		t.Fatalf("done err = %v, want ErrAborted", err)
	}
	for _, c := range []*net.TCPConn{left, right} {
		if _, err := io.ReadAll(c); !harness.IsReset(err) {
			t.Errorf("outer end read: err = %v, want a reset", err)
		}
	}
}

// A copy from a stream holds the smallest buffer its reads need: it moves
// up a size only when a read fills the one it has, so messages of a few KiB
// keep the mid buffer rather than the big one, and a small read takes it
// back down.
func TestLadderHoldsTheBufferReadsNeed(t *testing.T) {
	var l ladder
	defer l.release()
	for i, s := range []struct{ read, want int }{
		{0, smallSize},
		{100, smallSize},
		{smallSize, midSize},
		{4 << 10, midSize},
		{midSize, bufSize},
		{bufSize, bufSize},
		{smallSize, bufSize},
		{smallSize - 1, smallSize},
	} {
		if s.read > 0 {
			l.next(s.read)
		}
		if got := len(l.buf()); got != s.want {
			t.Fatalf("step %d: after a %d-byte read the buffer holds %d bytes, want %d", i, s.read, got, s.want)
		}
	}
}
