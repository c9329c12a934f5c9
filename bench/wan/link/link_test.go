//go:build linux

package link

import (
	"context"
	"encoding/binary"
	"errors"
	"math"
	"net"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/p2ptun/p2ptun/internal/harness"
)

// newLink starts a link for the test and closes it at its end; it skips
// the test where links cannot be made.
func newLink(t *testing.T, cfg Config) *Link {
	t.Helper()
	if err := Available(); err != nil {
		t.Skipf("link emulator: %v", err)
	}
	l, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := l.Close(); err != nil {
			t.Error(err)
		}
	})
	return l
}

func TestConfigRejected(t *testing.T) {
	for name, cfg := range map[string]Config{
		"negative rtt":  {RTT: -time.Millisecond},
		"huge rtt":      {RTT: time.Hour},
		"negative rate": {Rate: -1},
		"loss 1":        {Loss: 1},
		"negative loss": {Loss: -0.1},
		"loss NaN":      {Loss: math.NaN()},
		"queue < mtu":   {Rate: 1e6, Queue: 100},
		"mtu small":     {MTU: 100},
		"mtu huge":      {MTU: 70000},
		"congestion":    {TCPCongestion: "cubic; reboot"},
	} {
		t.Run(name, func(t *testing.T) {
			l, err := New(cfg)
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("New(%+v) = %v, %v; want ErrInvalid", cfg, l, err)
			}
			if msg := err.Error(); strings.Contains(msg, "\n") || !strings.Contains(msg, "want") {
				t.Errorf("error %q: want one line saying what to pass", msg)
			}
		})
	}
}

// udpPair is a UDP socket in A connected to one in B.
func udpPair(t *testing.T, l *Link) (a *net.UDPConn, b *net.UDPConn) {
	t.Helper()
	pc, err := l.B.ListenPacket("udp4", l.B.Addr.String()+":0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	c, err := l.A.Dial(context.Background(), "udp4", pc.LocalAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c.(*net.UDPConn), pc.(*net.UDPConn)
}

// TestLossSeeded sends numbered datagrams one way and checks that exactly
// the ones the seed's draws drop are missing: the kernel sends nothing
// else through the link (no IPv6), so datagram i is the link's packet i.
func TestLossSeeded(t *testing.T) {
	const (
		n     = 600
		seed  = 42
		loss  = 0.1
		batch = 50
	)
	l := newLink(t, Config{Loss: loss, Seed: seed})
	draws := lossStream(seed, AtoB)
	want := map[uint32]bool{}
	var lost int
	for i := range uint32(n) {
		if draws.Float64() < loss {
			lost++
		} else {
			want[i] = true
		}
	}
	a, b := udpPair(t, l)

	var (
		mu  sync.Mutex
		got = map[uint32]bool{}
	)
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 64)
		for {
			k, err := b.Read(buf)
			if err != nil {
				return
			}
			mu.Lock()
			got[binary.BigEndian.Uint32(buf[:k])] = true
			mu.Unlock()
		}
	}()
	// In batches, each received before the next is sent, so that no
	// socket buffer on a busy machine drops what the link delivered.
	count := func(below uint32) (have, expect int) {
		mu.Lock()
		defer mu.Unlock()
		for i := range below {
			if want[i] {
				expect++
			}
		}
		return len(got), expect
	}
	for start := uint32(0); start < n; start += batch {
		for i := start; i < start+batch; i++ {
			var msg [4]byte
			binary.BigEndian.PutUint32(msg[:], i)
			if _, err := a.Write(msg[:]); err != nil {
				t.Fatal(err)
			}
		}
		harness.UntilState(t, 30*time.Second, "the batch's datagrams to arrive", func() (bool, string) {
			have, expect := count(start + batch)
			return have >= expect, ""
		})
	}
	st := l.Stats(AtoB)
	if st.In != n || st.Lost != int64(lost) || st.Delivered != int64(n-lost) {
		t.Errorf("stats %+v: want In %d, Lost %d, Delivered %d", st, n, lost, n-lost)
	}
	b.Close()
	<-done
	for i := range uint32(n) {
		if got[i] != want[i] {
			t.Errorf("datagram %d: arrived %v, want %v (seed %d)", i, got[i], want[i], seed)
		}
	}
	if lost == 0 || lost == n {
		t.Fatalf("the seed drops %d of %d: pick one that tests something", lost, n)
	}
}

// TestDelayLowerBound: no round trip through the link is shorter than its
// RTT, however busy the machine (a bound a slow machine cannot break).
func TestDelayLowerBound(t *testing.T) {
	const rtt = 30 * time.Millisecond
	l := newLink(t, Config{RTT: rtt})
	a, b := udpPair(t, l)
	go func() { // echo
		buf := make([]byte, 64)
		for {
			n, from, err := b.ReadFrom(buf)
			if err != nil {
				return
			}
			b.WriteTo(buf[:n], from)
		}
	}()
	buf := make([]byte, 64)
	for i := range 10 {
		start := time.Now()
		if _, err := a.Write([]byte{byte(i)}); err != nil {
			t.Fatal(err)
		}
		a.SetReadDeadline(time.Now().Add(30 * time.Second))
		if _, err := a.Read(buf); err != nil {
			t.Fatal(err)
		}
		if d := time.Since(start); d < rtt || buf[0] != byte(i) {
			t.Fatalf("round trip %d took %v (echo %d); want at least the RTT, %v", i, d, buf[0], rtt)
		}
	}
}

// TestRateUpperBound sends as fast as it can for a while: the bytes that
// cross never exceed the rate times the time since the first was sent
// (an upper bound that a slow machine cannot break), and the drop-tail
// queue drops the excess.
func TestRateUpperBound(t *testing.T) {
	const (
		rate    = 8_000_000 // bits a second: 1 MB/s
		size    = 1000      // UDP payload; the IP packet is 28 more
		packets = 1500
	)
	l := newLink(t, Config{Rate: rate, Queue: 20_000})
	a, b := udpPair(t, l)
	var (
		bytes atomic.Int64
		last  atomic.Int64 // unix nanoseconds of the last arrival
	)
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 2*size)
		for {
			n, err := b.Read(buf)
			if err != nil {
				return
			}
			last.Store(time.Now().UnixNano())
			bytes.Add(int64(n + 28))
		}
	}()
	start := time.Now()
	msg := make([]byte, size)
	for range packets {
		if _, err := a.Write(msg); err != nil {
			t.Fatal(err)
		}
	}
	harness.UntilState(t, 60*time.Second, "every packet the link took to arrive", func() (bool, string) {
		st := l.Stats(AtoB)
		return st.In == packets && st.In == st.Lost+st.Dropped+st.Delivered && bytes.Load() == st.DeliveredBytes, ""
	})
	b.Close()
	<-done
	elapsed := time.Unix(0, last.Load()).Sub(start)
	limit := int64(rate / 8 * elapsed.Seconds())
	if got := bytes.Load(); got > limit || got == 0 {
		t.Errorf("%d bytes crossed in %v: want some, and at most %d at %d bit/s", got, elapsed, limit, rate)
	}
	if st := l.Stats(AtoB); st.Dropped == 0 {
		t.Errorf("stats %+v: sent %d packets at once into a 20 kB queue, want some dropped", st, packets)
	}
	// The device's own queue (10,000 packets) held them all until read.
	if n, err := l.DeviceDrops(AtoB); n != 0 || err != nil {
		t.Errorf("device drops %d, %v; want 0 for %d packets", n, err, packets)
	}
}

// TestCloseRemovesAll: after Close, the namespaces (with their devices)
// are gone, and so are the link's goroutines and file descriptors.
func TestCloseRemovesAll(t *testing.T) {
	if err := Available(); err != nil {
		t.Skipf("link emulator: %v", err)
	}
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	fds := openFDs(t)
	l, err := New(Config{RTT: 10 * time.Millisecond, Rate: 1e8, Loss: 0.01})
	if err != nil {
		t.Fatal(err)
	}
	ends := []End{l.A, l.B}
	for _, e := range ends {
		if _, err := os.Stat(netnsDir + "/" + e.NS); err != nil {
			t.Fatalf("namespace %s while the link runs: %v", e.NS, err)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	for _, e := range ends {
		if _, err := os.Stat(netnsDir + "/" + e.NS); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("namespace %s after Close: %v, want it gone", e.NS, err)
		}
	}
	if after := openFDs(t); after != fds {
		t.Errorf("%d file descriptors open after Close, %d before", after, fds)
	}
}

func openFDs(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}

// TestCongestionControl: the namespaces' TCP uses the congestion control
// asked for, whatever the machine's default is; one a namespace may not
// use is refused in one line.
func TestCongestionControl(t *testing.T) {
	allowed, err := os.ReadFile("/proc/sys/net/ipv4/tcp_allowed_congestion_control")
	if err != nil {
		t.Skipf("no TCP congestion controls to choose from: %v", err)
	}
	for _, cc := range strings.Fields(string(allowed)) {
		l := newLink(t, Config{TCPCongestion: cc})
		if got := l.TCPCongestion(); got != cc {
			t.Errorf("tcp_congestion_control %q, want %s", got, cc)
		}
	}
	avail, _ := os.ReadFile("/proc/sys/net/ipv4/tcp_available_congestion_control")
	for _, cc := range strings.Fields(string(avail)) {
		if !slices.Contains(strings.Fields(string(allowed)), cc) {
			l, err := New(Config{TCPCongestion: cc})
			if !errors.Is(err, ErrInvalid) || strings.Contains(err.Error(), "\n") {
				t.Errorf("New with %s, not allowed in a namespace: %v, %v; want ErrInvalid in one line", cc, l, err)
			}
			if l != nil {
				l.Close()
			}
		}
	}
}

// TestCloseKillsProcesses: a process started in a namespace does not
// outlive the link, even one nobody stopped.
func TestCloseKillsProcesses(t *testing.T) {
	if err := Available(); err != nil {
		t.Skipf("link emulator: %v", err)
	}
	l, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("sleep", "1000")
	if err := l.B.Start(cmd); err != nil {
		l.Close()
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	err = cmd.Wait()
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Errorf("sleep ended with %v (%v); want killed by SIGKILL when the link closed", cmd.ProcessState, err)
	}
	if err := l.A.Start(exec.Command("true")); !errors.Is(err, ErrClosed) {
		t.Errorf("Start after Close: %v, want ErrClosed", err)
	}
}
