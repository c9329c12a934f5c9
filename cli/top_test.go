package cli

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/p2ptun/p2ptun/api"
	"github.com/p2ptun/p2ptun/internal/harness"
)

func TestTopRates(t *testing.T) {
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	tunnels := []api.Listener{{ID: 1, Kind: "forward"}, {ID: 2, Kind: "listen"}}
	st := func(id string, tunnel uint64, in, out int64) api.Stream {
		return api.Stream{HandlerID: id, ListenerID: tunnel, BytesIn: in, BytesOut: out}
	}
	prev := topSample{at: t0, listeners: tunnels, streams: []api.Stream{
		st("1", 1, 100, 1000),
		st("2", 1, 5000, 5000), // ends before the next poll
		st("3", 2, 900, 900),   // its ID comes back with smaller counters
	}}
	cur := topSample{at: t0.Add(2 * time.Second), listeners: tunnels, streams: []api.Stream{
		st("1", 1, 300, 1000), // +200 in over 2s
		st("3", 2, 10, 20),    // a new stream reusing ID 3
		st("4", 1, 0, 4000),   // opened since the last poll
	}}
	v := topRates(prev, cur)
	want := []struct {
		id      string
		in, out float64
	}{{"4", 0, 2000}, {"1", 100, 0}, {"3", 5, 10}} // busiest first
	if len(v.streams) != len(want) {
		t.Fatalf("got %d streams, want %d", len(v.streams), len(want))
	}
	for i, w := range want {
		s := v.streams[i]
		if s.HandlerID != w.id || s.InRate != w.in || s.OutRate != w.out {
			t.Errorf("row %d = stream %s in %v/s out %v/s, want stream %s in %v/s out %v/s", i, s.HandlerID, s.InRate, s.OutRate, w.id, w.in, w.out)
		}
	}
	// Tunnel 1 lost stream 2 (5000 bytes each way) yet its rates are the
	// sum of its live streams', never negative.
	if tn := v.tunnels[0]; tn.Streams != 2 || tn.InRate != 100 || tn.OutRate != 2000 {
		t.Errorf("tunnel 1 = %d streams, in %v/s, out %v/s; want 2, 100, 2000", tn.Streams, tn.InRate, tn.OutRate)
	}
	if tn := v.tunnels[1]; tn.Streams != 1 || tn.InRate != 5 || tn.OutRate != 10 {
		t.Errorf("tunnel 2 = %d streams, in %v/s, out %v/s; want 1, 5, 10", tn.Streams, tn.InRate, tn.OutRate)
	}
	// Two polls at the same instant give no rate rather than a division
	// by zero.
	if v := topRates(cur, cur); v.streams[0].InRate != 0 || v.streams[0].OutRate != 0 {
		t.Errorf("zero interval: rates %v, %v; want 0", v.streams[0].InRate, v.streams[0].OutRate)
	}
}

func TestPerSecond(t *testing.T) {
	for in, want := range map[float64]string{0: "0B/s", 512: "512B/s", 1536: "1.5KiB/s", 3 << 20: "3.0MiB/s"} {
		if got := perSecond(in); got != want {
			t.Errorf("perSecond(%v) = %q, want %q", in, got, want)
		}
	}
}

// fakeSource returns samples 100 bytes apart and calls after on each poll.
type fakeSource struct {
	polls int
	after func(poll int)
}

func (f *fakeSource) sample(ctx context.Context) (topSample, error) {
	f.polls++
	if f.after != nil {
		f.after(f.polls)
	}
	if err := ctx.Err(); err != nil {
		return topSample{}, err // as the API client does
	}
	n := int64(f.polls * 100)
	return topSample{
		at:        time.Now(),
		listeners: []api.Listener{{ID: 1, Kind: "forward", Protocol: "/x/a"}},
		streams:   []api.Stream{{HandlerID: "1", ListenerID: 1, BytesIn: n, BytesOut: n, OpenedAt: time.Now()}},
	}, nil
}

func TestTopOnATerminalRedrawsAndShowsTheCursorOnInterrupt(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	src := &fakeSource{after: func(poll int) {
		if poll == 3 {
			cancel() // SIGINT during the third poll
		}
	}}
	var out bytes.Buffer
	err := runTop(ctx, src, &out, topOptions{interval: time.Millisecond, tty: true, size: func() (int, int) { return 40, 12 }})
	if err != nil {
		t.Fatalf("interrupted top returned %v, want nil", err)
	}
	s := out.String()
	if !strings.HasPrefix(s, ansiEnter) || !strings.HasSuffix(s, ansiLeave) {
		t.Errorf("output should enter the alternate screen first and leave it last: %q", s)
	}
	if n := strings.Count(s, ansiHome); n != 1 {
		t.Errorf("%d redraws, want 1 (the second snapshot was interrupted)", n)
	}
	for _, l := range strings.Split(s, "\n") {
		if l = strings.TrimPrefix(strings.TrimPrefix(l, ansiEnter), ansiHome); len([]rune(l)) > 40 {
			t.Errorf("line wider than the terminal: %q", l)
		}
	}
}

// On a terminal in raw mode, q quits between polls (other keys do not),
// the screen is restored, and lines end in \r\n.
func TestTopQuitsOnQ(t *testing.T) {
	keys := make(chan byte, 2)
	src := &fakeSource{after: func(poll int) {
		if poll == 2 { // the first snapshot is out after this poll
			keys <- 'x'
			keys <- 'q'
		}
	}}
	var out bytes.Buffer
	err := runTop(context.Background(), src, &out, topOptions{interval: time.Millisecond, tty: true, keys: keys})
	if err != nil {
		t.Fatalf("top quit with q returned %v, want nil", err)
	}
	s := out.String()
	if src.polls != 2 || strings.Count(s, ansiHome) != 1 {
		t.Errorf("%d polls, %d snapshots; want 2 and 1: q ends top before the next poll", src.polls, strings.Count(s, ansiHome))
	}
	if !strings.HasSuffix(s, "\r\n"+ansiLeave) || strings.Contains(strings.ReplaceAll(s, "\r\n", ""), "\n") {
		t.Errorf("want every line ending in \\r\\n and the screen restored last: %q", s)
	}
}

func TestNextTick(t *testing.T) {
	tick := make(chan time.Time, 1)
	keys := make(chan byte, 4)
	keys <- 'a' // ignored
	tick <- time.Now()
	if !nextTick(context.Background(), tick, keys) {
		t.Fatal("a tick after an ignored key: want true")
	}
	for _, k := range []byte{'q', 'Q', 3} {
		keys <- k
		if nextTick(context.Background(), tick, keys) {
			t.Errorf("key %q: want false (quit)", k)
		}
	}
	// A q typed before a pending tick counts first.
	keys <- 'x'
	keys <- 'q'
	tick <- time.Now()
	if nextTick(context.Background(), tick, keys) {
		t.Error("q and a tick both pending: want false (quit)")
	}
	select { // the tick, if the keys were read before it
	case <-tick:
	default:
	}
	close(keys) // stdin ended: ticks go on
	tick <- time.Now()
	if !nextTick(context.Background(), tick, keys) {
		t.Error("closed keys, then a tick: want true")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if nextTick(ctx, tick, nil) {
		t.Error("cancelled: want false")
	}
}

// Totals are written like the rates: with binary prefixes.
func TestRenderTopHumanTotals(t *testing.T) {
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	v := topView{at: at, streams: []streamRate{{Stream: api.Stream{HandlerID: "1", ListenerID: 1, Peer: "12D3KooWServer", Path: "direct", BytesIn: 3 << 20, BytesOut: 512, OpenedAt: at}, InRate: 1536}}}
	f := streamRow("p2ptun top "+renderTop(v, 0, 0), "1")
	if f == nil || f[5] != "3.0MiB" || f[6] != "512B" || f[7] != "1.5KiB/s" {
		t.Errorf("stream row = %q; want totals 3.0MiB and 512B, rate 1.5KiB/s", f)
	}
}

func TestTopPlainSnapshots(t *testing.T) {
	var out bytes.Buffer
	if err := runTop(context.Background(), &fakeSource{}, &out, topOptions{interval: time.Millisecond, frames: 2}); err != nil {
		t.Fatal(err)
	}
	s := out.String()
	if strings.Contains(s, "\x1b") {
		t.Errorf("ANSI sequences in plain output: %q", s)
	}
	if n := strings.Count(s, "p2ptun top "); n != 2 {
		t.Errorf("%d snapshots, want 2:\n%s", n, s)
	}
}

// streamRow finds stream id's row in the last snapshot of top's output.
func streamRow(out, id string) []string {
	snaps := strings.Split(out, "p2ptun top ")
	last := snaps[len(snaps)-1]
	_, streams, _ := strings.Cut(last, "STREAM ")
	for _, l := range strings.Split(streams, "\n") {
		if f := strings.Fields(l); len(f) == 9 && f[0] == id {
			return f
		}
	}
	return nil
}

func TestTopShowsALiveStream(t *testing.T) {
	a, b := startDaemon(t), startDaemon(t)
	c := tunnelled(t, a, b, "/x/top")
	msg := strings.Repeat("t", 2345)
	harness.Echoes(t, c, msg)
	rate := regexp.MustCompile(`^[0-9]+(\.[0-9])?(B|KiB|MiB|GiB|TiB)/s$`)
	var row []string
	waitUntil(t, "top to show the stream's bytes", func() bool {
		out, errOut, code := a.CLI(t, "top", "-n", "2", "--interval", "50ms")
		if code != 0 {
			t.Fatalf("top: %d %q", code, errOut)
		}
		row = streamRow(out, "1")
		return row != nil && row[5] == "2.3KiB" && row[6] == "2.3KiB"
	})
	// STREAM TUNNEL PEER PATH AGE IN OUT IN/S OUT/S
	if row[2] != shortPeer(b.ID) || row[3] != "direct" || !rate.MatchString(row[7]) || !rate.MatchString(row[8]) {
		t.Errorf("stream row = %q, want peer %s, direct, and two rates", row, shortPeer(b.ID))
	}
	out, errOut, code := a.CLI(t, "top", "--once", "--interval", "10ms")
	if code != 0 || streamRow(out, "1") == nil || !strings.Contains(out, "/x/top") {
		t.Fatalf("top --once: %d %q\n%s", code, errOut, out)
	}
}

func TestTopWithoutADaemon(t *testing.T) {
	_, errOut, code := run(t, "--home", harness.TempHome(t), "top", "--once")
	if code != ExitDaemonNotRunning || !strings.Contains(errOut, "p2ptun daemon") {
		t.Fatalf("top with no daemon: %d %q", code, errOut)
	}
	_, _, code = run(t, "--home", harness.TempHome(t), "top", "--interval", "0s")
	if code != ExitUsage {
		t.Fatalf("top --interval 0s: exit %d, want %d", code, ExitUsage)
	}
}

// On a real terminal (script(1) gives top one), top draws on the
// alternate screen, x does nothing, q quits with exit 0 and leaves the
// alternate screen, and the terminal's modes are as they were before.
func TestTopOnARealTerminal(t *testing.T) {
	scriptBin, err := exec.LookPath("script")
	if err != nil {
		t.Skip("needs script(1), from Debian's bsdutils (util-linux), to give top a terminal")
	}
	d := startDaemon(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	// stty's lines bracket top's output.
	line := fmt.Sprintf("stty -g; %s --home %s top --interval 50ms; echo top-exit=$?; stty -g", harness.Binary(t), d.Home)
	cmd := exec.CommandContext(ctx, scriptBin, "-qec", line, "/dev/null")
	cmd.Env = harness.Env()
	cmd.Stderr = cmd.Stdout
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Keys go in once the first snapshot is drawn.
	var out bytes.Buffer
	buf := make([]byte, 4096)
	for !strings.Contains(out.String(), "p2ptun top ") {
		n, err := stdout.Read(buf)
		out.Write(buf[:n])
		if err != nil {
			t.Fatalf("top's output ended before a snapshot: %v\n%q", err, out.String())
		}
	}
	if _, err := in.Write([]byte("xq")); err != nil {
		t.Fatal(err)
	}
	rest, _ := io.ReadAll(stdout)
	out.Write(rest)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("script: %v\n%q", err, out.String())
	}
	s := strings.ReplaceAll(out.String(), "\r", "")
	before, after, ok := strings.Cut(s, "top-exit=")
	if !ok || !strings.HasPrefix(after, "0\n") {
		t.Fatalf("top did not exit 0 on q:\n%q", s)
	}
	modes := regexp.MustCompile(`[0-9a-f]+(:[0-9a-f]+){10,}`) // stty -g
	if m, n := modes.FindString(before), modes.FindString(after); m == "" || m != n {
		t.Errorf("terminal modes before top %q, after %q; want them restored", m, n)
	}
	if !strings.Contains(before, ansiEnter) || !strings.HasSuffix(strings.TrimRight(before, "\n"), ansiLeave) {
		t.Errorf("top should draw on the alternate screen and leave it last:\n%q", before)
	}
}
