package soak

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/p2ptun/p2ptun/internal/testnet"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func listen(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

func newServer(t *testing.T) *Server {
	t.Helper()
	s := NewServer(listen(t), 0)
	t.Cleanup(func() { s.Close() })
	return s
}

func dialer(addr string) func(context.Context) (net.Conn, error) {
	return func(ctx context.Context) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "tcp", addr)
	}
}

func TestSpecFor(t *testing.T) {
	if a, b := SpecFor(42, 0), SpecFor(42, 0); a != b {
		t.Fatalf("SpecFor(42) = %v, then %v; want the same", a, b)
	}
	var modes [numModes]int
	var zero, tiny, big int
	for seed := range uint64(2000) {
		sp := SpecFor(seed, 0)
		if sp.Seed != seed {
			t.Fatalf("SpecFor(%d).Seed = %d", seed, sp.Seed)
		}
		modes[sp.Mode]++
		for _, n := range []int64{sp.Up, sp.Down} {
			switch {
			case n < 0 || n > DefaultMaxSize:
				t.Fatalf("%v: size %d outside [0, %d]", sp, n, DefaultMaxSize)
			case n == 0:
				zero++
			case n <= 1<<10:
				tiny++
			case n > 1<<20:
				big++
			}
		}
	}
	for m, n := range modes {
		if n == 0 {
			t.Errorf("no seed in 2000 gives mode %v", Mode(m))
		}
	}
	if zero == 0 || tiny == 0 || big == 0 {
		t.Errorf("sizes over 2000 seeds: %d empty, %d up to 1 KiB, %d over 1 MiB; want some of each", zero, tiny, big)
	}
	for seed := range uint64(500) {
		if sp := SpecFor(seed, 100); sp.Up > 100 || sp.Down > 100 {
			t.Fatalf("SpecFor(%d, 100) = %v, over the cap", seed, sp)
		}
	}
}

func TestHeaderRoundTrip(t *testing.T) {
	sp := Spec{Seed: 0xdeadbeef, Mode: Concurrent, Up: 1 << 40, Down: 7}
	got, err := parseHeader(sp.header())
	if err != nil || got != sp {
		t.Fatalf("parseHeader(header(%v)) = %v, %v", sp, got, err)
	}
	for _, bad := range [][]byte{
		append([]byte("XOK1"), sp.header()[4:]...),
		func() []byte { h := sp.header(); h[4] = numModes; return h }(),
		func() []byte { h := sp.header(); h[6] = 1; return h }(),
		func() []byte { h := sp.header(); h[16] = 0x80; return h }(),
	} {
		if got, err := parseHeader(bad); err == nil {
			t.Errorf("parseHeader(%x) = %v, want an error", bad, got)
		}
	}
}

// TestExchangeModes runs each mode directly against the server, with
// sizes at the edges: nothing, one byte, one chunk, a chunk and a byte.
func TestExchangeModes(t *testing.T) {
	srv := newServer(t)
	l := Load{Server: srv, Dial: dialer(srv.Addr().String())}
	sizes := []int64{0, 1, chunk, chunk + 1, 1 << 20}
	seed := uint64(1)
	for m := range Mode(numModes) {
		for _, up := range sizes {
			for _, down := range sizes {
				sp := Spec{Seed: seed, Mode: m, Up: up, Down: down}
				seed++
				tr, err := l.One(t.Context(), sp)
				if err != nil {
					t.Fatal(err)
				}
				if tr.Up != up || tr.Down != down {
					t.Errorf("%v moved %d up, %d down", sp, tr.Up, tr.Down)
				}
			}
		}
	}
	if f := srv.Failures(); len(f) != 0 {
		t.Errorf("server failures: %v", f)
	}
}

func TestLoadCount(t *testing.T) {
	srv := newServer(t)
	var calls int
	var mu sync.Mutex
	st := Load{
		Server: srv, Dial: dialer(srv.Addr().String()), Workers: 8, Count: 120, MaxSize: 256 << 10, FirstSeed: 1000,
		Progress: func(Stats) { mu.Lock(); calls++; mu.Unlock() },
	}.Run(t.Context())
	if err := st.Err(); err != nil {
		t.Fatal(err)
	}
	if st.Conns != 120 || calls != 120 {
		t.Errorf("verified %d connections with %d progress calls, want 120 of each", st.Conns, calls)
	}
	var up, down int64
	for seed := uint64(1000); seed < 1120; seed++ {
		sp := SpecFor(seed, 256<<10)
		up, down = up+sp.Up, down+sp.Down
	}
	if st.BytesUp != up || st.BytesDown != down {
		t.Errorf("counted %d up, %d down; the specs add up to %d, %d", st.BytesUp, st.BytesDown, up, down)
	}
	for m, n := range st.Modes {
		if n == 0 {
			t.Errorf("no connection ran in mode %v: %s", Mode(m), st.ModeCounts())
		}
	}
}

// edit is one change a tamper proxy makes to a direction's byte stream,
// at stream offset at.
type edit struct {
	kind string // "flip" a byte, "drop" it, "cut" the rest, add an "extra" byte at the end
	at   int64
}

// apply edits the chunk b that starts at stream offset off.
func (e edit) apply(off int64, b []byte) []byte {
	i := e.at - off
	in := i >= 0 && i < int64(len(b))
	switch {
	case e.kind == "flip" && in:
		b[i] ^= 0x5a
	case e.kind == "drop" && in:
		b = append(b[:i:i], b[i+1:]...)
	case e.kind == "cut" && i <= 0:
		b = nil
	case e.kind == "cut" && in:
		b = b[:i]
	}
	return b
}

// newTamper starts a proxy to target that applies an edit to each
// direction as the bytes flow, and passes half-closes on. It returns the
// proxy's host:port.
func newTamper(t *testing.T, target net.Addr, up, down edit) string {
	return testnet.Serve(t, func(c *net.TCPConn) {
		s, err := net.Dial("tcp", target.String())
		if err != nil {
			t.Error(err)
			return
		}
		defer s.Close()
		var wg sync.WaitGroup
		wg.Go(func() { pass(s.(*net.TCPConn), c, up) })
		pass(c, s, down)
		wg.Wait()
	})
}

func pass(dst *net.TCPConn, src net.Conn, e edit) {
	defer dst.CloseWrite()
	buf := make([]byte, 4096)
	var off int64
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if _, werr := dst.Write(e.apply(off, buf[:n])); werr != nil {
				return
			}
			off += int64(n)
		}
		if err != nil {
			if err == io.EOF && e.kind == "extra" {
				_, _ = dst.Write([]byte{'x'})
			}
			return
		}
	}
}

// TestCorruptionIsCaught shows that the checker fails a connection for a
// single wrong, missing or extra byte either way, and says which
// connection and where.
func TestCorruptionIsCaught(t *testing.T) {
	const up, down = 5000, 9000
	for _, tc := range []struct {
		name     string
		up, down edit
		want     string // regexp the error must match
	}{
		{"upload byte flipped", edit{"flip", headerLen + 1234}, edit{},
			`server: conn seed=0x7 \S+ up=5000 down=9000: upload byte at offset 1234 of 5000 is 0x[0-9a-f]+, want 0x[0-9a-f]+`},
		{"download byte flipped", edit{}, edit{"flip", 4321},
			`conn seed=0x7 \S+ up=5000 down=9000: download byte at offset 4321 of 9000 is 0x[0-9a-f]+, want 0x[0-9a-f]+`},
		{"download byte missing", edit{}, edit{"drop", 100},
			`conn seed=0x7 .*: download byte at offset 100 of 9000 is`},
		{"upload byte missing", edit{"drop", headerLen + 10}, edit{},
			`server: conn seed=0x7 .*: upload byte at offset 10 of 5000 is`},
		{"download cut short", edit{}, edit{"cut", 3000},
			`conn seed=0x7 .*: download ended at offset 3000 of 9000: 6000 bytes missing`},
		{"upload cut short", edit{"cut", headerLen + 4999}, edit{},
			`server: conn seed=0x7 .*: upload ended at offset 4999 of 5000: 1 bytes missing`},
		{"upload byte extra", edit{"extra", 0}, edit{},
			`server: conn seed=0x7 .*: upload: 1 unexpected bytes after the upload`},
		{"download byte extra", edit{}, edit{"extra", 0},
			`conn seed=0x7 .*: 1 unexpected bytes after the download's SHA-256`},
		{"download checksum flipped", edit{}, edit{"flip", down + 3},
			`conn seed=0x7 .*: download SHA-256: server sent [0-9a-f]{64}, received bytes hash to [0-9a-f]{64}`},
		{"header seed changed", edit{"flip", 15}, edit{},
			`server: conn seed=0x(5d|7) .* arrived but was not expected`},
	} {
		for m := range Mode(numModes) {
			t.Run(fmt.Sprintf("%s/%v", tc.name, m), func(t *testing.T) {
				srv := newServer(t)
				proxy := newTamper(t, srv.Addr(), tc.up, tc.down)
				sp := Spec{Seed: 7, Mode: m, Up: up, Down: down}
				l := Load{Server: srv, Dial: dialer(proxy), Count: 1, FirstSeed: 7}
				_, err := l.One(t.Context(), sp)
				// What the server saw on its own, e.g. a header that
				// matches no connection.
				srv.Close()
				err = errors.Join(err, errors.Join(srv.Failures()...))
				if err == nil {
					t.Fatalf("%s went unnoticed", tc.name)
				}
				if !regexp.MustCompile(tc.want).MatchString(err.Error()) {
					t.Fatalf("error:\n%v\nwant a match for %s", err, tc.want)
				}
				t.Log(err)
			})
		}
	}
}

// TestLoadReportsFailures checks that a load through a tampering proxy
// fails and stops after MaxFailures.
func TestLoadReportsFailures(t *testing.T) {
	srv := newServer(t)
	proxy := newTamper(t, srv.Addr(), edit{}, edit{"drop", 0})
	st := Load{Server: srv, Dial: dialer(proxy), Workers: 2, Count: 1000, MaxFailures: 3}.Run(t.Context())
	if st.Failed < 3 || len(st.Errors) != 3 || st.Conns != 0 {
		t.Fatalf("stats %+v, want ≥ 3 failures, 3 recorded, none verified", st)
	}
	if err := st.Err(); err == nil || !strings.Contains(err.Error(), "connections failed") {
		t.Fatalf("Err() = %v", err)
	}
}

func TestStallFails(t *testing.T) {
	// A target that accepts and never answers: the exchange fails after
	// the idle time instead of hanging.
	silent := testnet.Serve(t, func(c *net.TCPConn) { _, _ = io.Copy(io.Discard, c) })
	c, err := net.Dial("tcp", silent)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_, err = Exchange(t.Context(), c, Spec{Seed: 3, Mode: ServerFirst, Down: 10}, 50*time.Millisecond)
	if err == nil || !strings.Contains(err.Error(), "conn seed=0x3 server-first up=0 down=10: download at offset 0 of 10: stalled: no progress for 50ms") {
		t.Fatalf("err = %v, want a stall naming the connection", err)
	}
}

func TestHold(t *testing.T) {
	e := NewEcho(listen(t), 0)
	defer e.Close()
	h, err := OpenAll(t.Context(), 50, dialer(e.Addr().String()), 0)
	if err != nil {
		t.Fatal(err)
	}
	if h.Len() != 50 {
		t.Fatalf("holding %d, want 50", h.Len())
	}
	e.mu.Lock()
	open := len(e.conns)
	e.mu.Unlock()
	if open != 50 {
		t.Fatalf("echo server has %d connections open, want 50", open)
	}
	n, err := h.EchoAll(t.Context(), 100<<10)
	if err != nil {
		t.Fatal(err)
	}
	if n != 50*100<<10 {
		t.Errorf("EchoAll verified %d bytes, want %d", n, 50*100<<10)
	}
}

func TestHoldCatchesBadEcho(t *testing.T) {
	// A server that answers each greeting with one letter changed: OpenAll
	// fails and names the connections.
	bad := testnet.Serve(t, func(c *net.TCPConn) {
		line, err := bufio.NewReader(c).ReadString('\n')
		if err != nil {
			return
		}
		_, _ = io.WriteString(c, strings.Replace(line, "hold", "hald", 1))
	})
	h, err := OpenAll(t.Context(), 3, dialer(bad), 0)
	if err == nil {
		h.Close()
		t.Fatal("OpenAll accepted a wrong greeting")
	}
	if want := "3 of 3 connections failed; the first 3:\nheld conn 0: greeting \"hold 0\\n\" echoed as \"hald 0\\n\""; !strings.HasPrefix(err.Error(), want) {
		t.Fatalf("OpenAll = %v\nwant it to start with %s", err, want)
	}

	e := NewEcho(listen(t), 0)
	defer e.Close()
	h, err = OpenAll(t.Context(), 3, dialer(e.Addr().String()), 0)
	if err != nil {
		t.Fatal(err)
	}
	// A stray byte on connection 1 comes back ahead of its echo.
	if _, err := h.conns[1].Write([]byte{'!'}); err != nil {
		t.Fatal(err)
	}
	_, err = h.EchoAll(t.Context(), 1000)
	if err == nil || !strings.Contains(err.Error(), "1 of 3 connections failed") || !strings.Contains(err.Error(), "held conn 1: echo byte at offset 0 of 1000 is 0x21") {
		t.Fatalf("EchoAll = %v, want connection 1's echo to fail at offset 0", err)
	}
}

func TestSample(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "# HELP go_goroutines Number of goroutines.\n# TYPE go_goroutines gauge\ngo_goroutines 42\n")
	}))
	defer srv.Close()
	u, err := Sample(t.Context(), os.Getpid(), srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	if u.Goroutines != 42 || u.FDs < 3 || u.RSS < 1<<20 {
		t.Fatalf("Sample = %+v, want 42 goroutines, at least 3 fds and 1 MiB", u)
	}

	if _, err := parseGoroutines(strings.NewReader("# TYPE other gauge\nother 1\n")); err == nil {
		t.Error("parseGoroutines found go_goroutines in text without it")
	}
	if n, err := vmRSS([]byte("Name:\tx\nVmRSS:\t  2048 kB\n")); n != 2<<20 || err != nil {
		t.Errorf("vmRSS = %d, %v; want 2 MiB", n, err)
	}
	if _, err := vmRSS([]byte("Name:\tx\n")); err == nil {
		t.Error("vmRSS without a VmRSS line: no error")
	}
}

func TestOverAndTable(t *testing.T) {
	base := Usage{FDs: 10, Goroutines: 20, RSS: 30 << 20}
	tol := Tolerance{FDs: 4, Goroutines: 10, RSS: 64 << 20}
	if s := (Usage{FDs: 14, Goroutines: 30, RSS: 94 << 20}).Over(base, tol); s != "" {
		t.Errorf("at the tolerance: Over = %q, want \"\"", s)
	}
	got := Usage{FDs: 15, Goroutines: 31, RSS: 95 << 20}.Over(base, tol)
	want := "15 fds, baseline 10 + 4; 31 goroutines, baseline 20 + 10; RSS 95.0 MiB, baseline 30.0 MiB + 64.0 MiB"
	if got != want {
		t.Errorf("Over = %q, want %q", got, want)
	}
	var b bytes.Buffer
	if err := WriteTable(&b, []ProcReport{{Name: "a", Baseline: base, Peak: Usage{FDs: 99, Goroutines: 300, RSS: 80 << 20}, After: base}}); err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`(?m)^\s*a\s+10\s+99\s+10\s+20\s+300\s+20\s+30\.0\s+80\.0\s+30\.0\s*$`).MatchString(b.String()) {
		t.Errorf("table:\n%s", b.String())
	}
}
