//go:build unix

package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/p2ptun/p2ptun/internal/harness"
	"github.com/p2ptun/p2ptun/internal/soak"
)

// The soak tests run real daemons, as users run them, and push checked
// traffic through a tunnel between them (see internal/soak). `make test`
// runs them briefly; `make soak` (SOAK=2m by default) runs them longer.
//
// Environment:
//
//	SOAK          how long TestSoak opens connections (a Go duration; default 5s)
//	SOAK_WORKERS  connections open at once in TestSoak (default 64)
//	SOAK_SEED     seed of TestSoak's first connection (default 1; 0x45 or 69), to replay a failure

// soakTolerance is how far above its baseline a daemon may stay once the
// load is over and its streams have closed. Go keeps freed memory until a
// later GC and returns it to the OS slowly, so RSS only has to stay within
// a generous bound.
var soakTolerance = soak.Tolerance{FDs: 4, Goroutines: 10, RSS: 64 << 20}

// soakSettle bounds the wait for a daemon to return to its baseline.
const soakSettle = 30 * time.Second

func soakEnvInt(t *testing.T, name string, def int) int {
	t.Helper()
	s := os.Getenv(name)
	if s == "" {
		return def
	}
	n, err := strconv.Atoi(s)
	if err != nil || n <= 0 {
		t.Fatalf("%s=%q: want a positive integer", name, s)
	}
	return n
}

func soakDuration(t *testing.T) time.Duration {
	t.Helper()
	s := os.Getenv("SOAK")
	if s == "" {
		return 5 * time.Second
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		t.Fatalf("SOAK=%q: want a Go duration such as 2m or 30m", s)
	}
	if dl, ok := t.Deadline(); ok && time.Until(dl) < d+3*time.Minute {
		t.Fatalf("SOAK=%v does not fit in go test's -timeout (%v left): pass -timeout %v or more", d, time.Until(dl).Round(time.Second), d+5*time.Minute)
	}
	return d
}

// soakDaemon is a daemon under load and what it held before.
type soakDaemon struct {
	*harness.Daemon
	name     string
	baseline soak.Usage
	peak     soak.Usage
}

func (d *soakDaemon) sample(t *testing.T) soak.Usage {
	t.Helper()
	u, err := soak.Sample(t.Context(), d.Cmd.Process.Pid, d.Metrics)
	if err != nil {
		t.Fatalf("sampling daemon %s: %v\n%s", d.name, err, d.Logs)
	}
	return u
}

// logTail returns the last n lines of the daemon's log, headed by its
// name.
func (d *soakDaemon) logTail(n int) string {
	lines := strings.SplitAfter(d.Logs.String(), "\n")
	return fmt.Sprintf("daemon %s, last lines of its log:\n%s", d.name, strings.Join(lines[max(len(lines)-n-1, 0):], ""))
}

// streams is how many live streams `stream ls` lists.
func (d *soakDaemon) streams(t *testing.T) int {
	t.Helper()
	out, errOut, code := harness.Run(t, "--home", d.Home, "stream", "ls", "--json")
	var l struct{ Streams []json.RawMessage }
	if err := json.Unmarshal([]byte(out), &l); code != 0 || err != nil {
		t.Fatalf("daemon %s: stream ls exited %d (%v): %s%s", d.name, code, err, out, errOut)
	}
	return len(l.Streams)
}

// startSoakDaemon starts a daemon with metrics on (for go_goroutines)
// that lives as long as the test may. config, if not empty, is its
// config.toml; otherwise it runs --ephemeral, with the defaults.
func startSoakDaemon(t *testing.T, name, config string) *soakDaemon {
	t.Helper()
	home := harness.TempHome(t)
	extra := []string{"--metrics", "127.0.0.1:0"}
	if config == "" {
		extra = append(extra, "--ephemeral")
	} else {
		harness.WriteConfig(t, home, config)
	}
	life := 10 * time.Minute
	if dl, ok := t.Deadline(); ok {
		life = time.Until(dl)
	}
	d := harness.Start(t, harness.Spec{Home: home, Life: life, Args: extra})
	if d.Metrics == "" || len(d.Addresses) == 0 {
		t.Fatalf("daemon %s: ready file lacks Metrics or Addresses", name)
	}
	return &soakDaemon{Daemon: d, name: name}
}

// soakTunnel has b listen on proto to target for a only, has a forward a
// local port to it, and returns a dialer for that port.
func soakTunnel(t *testing.T, a, b *soakDaemon, proto, target string) func(context.Context) (net.Conn, error) {
	t.Helper()
	if out, errOut, code := harness.Run(t, "--home", b.Home, "listen", proto, target, "--allow", a.ID); code != 0 {
		t.Fatalf("listen on %s exited %d: %s%s", b.name, code, out, errOut)
	}
	out, errOut, code := harness.Run(t, "--home", a.Home, "forward", proto, "127.0.0.1:0", b.Addresses[0])
	if code != 0 {
		t.Fatalf("forward on %s exited %d: %s%s", a.name, code, out, errOut)
	}
	addr := harness.HostPort(t, strings.TrimSpace(out))
	return func(ctx context.Context) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "tcp", addr)
	}
}

// settle waits until every daemon lists no stream and is back within tol
// of its baseline, and returns what each holds then. It fails the test,
// saying what stayed above, if that takes soakSettle.
func settle(t *testing.T, tol soak.Tolerance, ds ...*soakDaemon) []soak.ProcReport {
	t.Helper()
	deadline := time.Now().Add(soakSettle)
	for {
		var (
			reports []soak.ProcReport
			over    []string
		)
		for _, d := range ds {
			u := d.sample(t)
			d.peak = d.peak.Max(u)
			reports = append(reports, soak.ProcReport{Name: d.name, Baseline: d.baseline, Peak: d.peak, After: u})
			if n := d.streams(t); n != 0 {
				over = append(over, fmt.Sprintf("daemon %s lists %d streams", d.name, n))
			}
			if s := u.Over(d.baseline, tol); s != "" {
				over = append(over, fmt.Sprintf("daemon %s: %s", d.name, s))
			}
		}
		if len(over) == 0 {
			return reports
		}
		if time.Now().After(deadline) {
			var b strings.Builder
			_ = soak.WriteTable(&b, reports)
			for _, d := range ds {
				b.WriteString(d.logTail(20))
			}
			t.Fatalf("%v after the load, the daemons have not returned to their baselines:\n%s\n%s", soakSettle, strings.Join(over, "\n"), b.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// watchPeaks samples the daemons every interval until stop is called,
// keeping each one's peak.
func watchPeaks(t *testing.T, interval time.Duration, ds ...*soakDaemon) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		tick := time.NewTicker(interval)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-tick.C:
			}
			for _, d := range ds {
				// A failed sample is not the load's failure; the final
				// samples, which must succeed, come after.
				if u, err := soak.Sample(t.Context(), d.Cmd.Process.Pid, d.Metrics); err == nil {
					d.peak = d.peak.Max(u)
				}
			}
		}
	})
	return func() { close(done); wg.Wait() }
}

// TestSoak opens, uses and closes connections through a tunnel between
// two daemons for SOAK, SOAK_WORKERS at a time, with random sizes and
// half-close orders, checking every byte both ways; then it checks that
// each daemon's fds and goroutines return to their baseline.
func TestSoak(t *testing.T) {
	dur := soakDuration(t)
	workers := soakEnvInt(t, "SOAK_WORKERS", 64)
	seed := uint64(1)
	if s := os.Getenv("SOAK_SEED"); s != "" {
		var err error
		if seed, err = strconv.ParseUint(s, 0, 64); err != nil {
			t.Fatalf("SOAK_SEED=%q: want a seed as failures print it (0x45) or in decimal", s)
		}
	}

	// One peer churning thousands of connections a second is far above
	// the default stream rate of a named peer (1000/s), which is the point
	// of the rate; the listener raises it, as a user serving such a client
	// would. TestSoakThousandConnections runs with the defaults.
	b := startSoakDaemon(t, "b (listen)", "[limits]\npeer_stream_rate = 1000000.0\nnamed_peer_stream_rate = 1000000.0\n")
	a := startSoakDaemon(t, "a (forward)", "")

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := soak.NewServer(ln, 0)
	defer srv.Close()
	dial := soakTunnel(t, a, b, "/x/soak", srv.Addr().String())

	// Warm up (the peers are connected, identify has run), then take the
	// baseline.
	if st := (soak.Load{Dial: dial, Server: srv, Workers: 4, Count: 16, FirstSeed: 1 << 62}).Run(t.Context()); st.Err() != nil {
		t.Fatalf("warm-up: %v", st.Err())
	}
	settleBaseline(t, a, b)

	stopPeaks := watchPeaks(t, 250*time.Millisecond, a, b)
	var lastLog time.Time
	var logMu sync.Mutex
	st := soak.Load{
		Dial: dial, Server: srv, Workers: workers, Duration: dur, FirstSeed: seed,
		Progress: func(s soak.Stats) {
			logMu.Lock()
			defer logMu.Unlock()
			if time.Since(lastLog) >= 30*time.Second {
				if !lastLog.IsZero() {
					t.Logf("%d connections verified, %d failed, %s up, %s down", s.Conns, s.Failed, soak.MiB(s.BytesUp), soak.MiB(s.BytesDown))
				}
				lastLog = time.Now()
			}
		},
	}.Run(t.Context())
	stopPeaks()

	var sum strings.Builder
	soak.WriteStats(&sum, workers, st)
	if err := st.Err(); err != nil {
		t.Fatalf("%s%v\n%s%s", sum.String(), err, a.logTail(20), b.logTail(20))
	}
	if st.Conns == 0 {
		t.Fatalf("%sno connection was verified", sum.String())
	}
	reports := settle(t, soakTolerance, a, b)
	_ = soak.WriteTable(&sum, reports)
	t.Logf("soak summary:\n%s", sum.String())
}

// settleBaseline takes each daemon's baseline once a first sample and
// its stream list show it idle: no stream open (the warm-up's have
// closed) and fds not falling between two samples.
func settleBaseline(t *testing.T, ds ...*soakDaemon) {
	t.Helper()
	deadline := time.Now().Add(soakSettle)
	for _, d := range ds {
		prev := d.sample(t)
		for {
			time.Sleep(100 * time.Millisecond)
			u := d.sample(t)
			if d.streams(t) == 0 && u.FDs >= prev.FDs && u.Goroutines >= prev.Goroutines {
				d.baseline, d.peak = u, u
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("daemon %s did not become idle before the load within %v: %v, then %v", d.name, soakSettle, prev, u)
			}
			prev = u
		}
	}
}

// soakNoFile makes sure this process may open n files, raising the soft
// limit to the hard one if needed, and skips the test if it cannot.
func soakNoFile(t *testing.T, n uint64) {
	t.Helper()
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	if uint64(lim.Cur) >= n { // int64 on FreeBSD
		return
	}
	if uint64(lim.Max) < n {
		t.Skipf("this test needs %d open files; the hard limit is %d (raise it: ulimit -Hn %d, as root)", n, lim.Max, n)
	}
	lim.Cur = lim.Max
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Skipf("this test needs %d open files; raising the soft limit to %d: %v", n, lim.Max, err)
	}
}

// TestSoakThousandConnections holds 1,000 tunnelled connections open at
// once, between two daemons with the default limits, checks each is
// established end to end, has each echo 64 KiB, closes them, and checks
// that the daemons return to their baselines.
func TestSoakThousandConnections(t *testing.T) {
	const n = 1000
	// Each connection is two fds here (the client's and the echo
	// server's), plus the daemons' CLI runs and the Go runtime's.
	soakNoFile(t, 2*n+256)

	b := startSoakDaemon(t, "b (listen)", "")
	a := startSoakDaemon(t, "a (forward)", "")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	echo := soak.NewEcho(ln, 0)
	defer echo.Close()
	// No warm-up connection: the default burst is exactly 1,000 streams.
	// forward connects to b when it starts, so the peers are connected.
	dial := soakTunnel(t, a, b, "/x/hold", echo.Addr().String())
	settleBaseline(t, a, b)

	held, err := soak.OpenAll(t.Context(), n, dial, 0)
	if err != nil {
		t.Fatalf("opening %d connections at once through the tunnel: %v\n%s%s", n, err, a.logTail(20), b.logTail(20))
	}
	defer held.Close()
	for _, d := range []*soakDaemon{a, b} {
		if got := d.streams(t); got != n {
			t.Fatalf("with %d connections held open, daemon %s lists %d streams", n, d.name, got)
		}
		d.peak = d.peak.Max(d.sample(t))
	}
	const size = 64 << 10
	verified, err := held.EchoAll(t.Context(), size)
	if err != nil {
		t.Fatalf("echoing %d KiB on each of %d connections: %v\n%s%s", size>>10, n, err, a.logTail(20), b.logTail(20))
	}
	// Go keeps the memory that held the connections until a later GC, so
	// RSS may stay near its peak; it must not exceed 256 KiB a connection
	// (it takes 100–130 KiB: far less than a yamux window per stream).
	tol := soakTolerance
	tol.RSS += n * 256 << 10
	reports := settle(t, tol, a, b)
	var sum strings.Builder
	fmt.Fprintf(&sum, "%d connections held open at once, each echoed a greeting then %d KiB (%s verified)\n", n, size>>10, soak.MiB(verified))
	_ = soak.WriteTable(&sum, reports)
	t.Logf("summary:\n%s", sum.String())
}
