package cli

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/p2ptun/p2ptun/internal/harness"
	"github.com/p2ptun/p2ptun/internal/testnet"
)

// pipeRun is a `p2ptun pipe` running in-process with its stdin and stdout
// connected to the test.
type pipeRun struct {
	stdin  *io.PipeWriter
	stdout *bufio.Reader
	stderr *syncBuf
	exited chan int
	once   sync.Once
	code   int
}

// startPipe runs `p2ptun pipe ARGS` against d. Its stdout ends (io.EOF)
// once the command has returned. At cleanup its stdin is closed and the
// command waited for.
func startPipe(t *testing.T, d *harness.Daemon, args ...string) *pipeRun {
	t.Helper()
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	p := &pipeRun{stdin: inW, stdout: bufio.NewReader(outR), stderr: &syncBuf{}, exited: make(chan int, 1)}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	go func() {
		code := RunStdin(ctx, append([]string{"--home", d.Home, "pipe"}, args...), inR, outW, p.stderr)
		outW.Close()
		p.exited <- code
	}()
	t.Cleanup(func() {
		inW.Close()
		outR.Close()
		p.wait()
		cancel()
	})
	return p
}

// wait returns the command's exit code once it has returned.
func (p *pipeRun) wait() int {
	p.once.Do(func() { p.code = <-p.exited })
	return p.code
}

func (p *pipeRun) send(t *testing.T, s string) {
	t.Helper()
	if _, err := io.WriteString(p.stdin, s); err != nil {
		t.Fatalf("writing %q to pipe's stdin: %v", s, err)
	}
}

func (p *pipeRun) expect(t *testing.T, want string) {
	t.Helper()
	got := make([]byte, len(want))
	if _, err := io.ReadFull(p.stdout, got); err != nil || string(got) != want {
		t.Fatalf("pipe's stdout: got %q (%v), want %q; stderr: %s", got, err, want, p.stderr)
	}
}

// expectEnd checks that stdout carries nothing more and that the command
// exits with code, writing to stderr one line that contains each of msg.
func (p *pipeRun) expectEnd(t *testing.T, code int, msg ...string) {
	t.Helper()
	rest, err := io.ReadAll(p.stdout)
	if err != nil || len(rest) != 0 {
		t.Errorf("pipe's stdout after the session: %q (%v), want nothing", rest, err)
	}
	if got := p.wait(); got != code {
		t.Errorf("pipe exited with %d, want %d; stderr: %s", got, code, p.stderr)
	}
	errOut := p.stderr.String()
	if len(msg) == 0 {
		if errOut != "" {
			t.Errorf("pipe's stderr = %q, want nothing", errOut)
		}
		return
	}
	if !strings.HasPrefix(errOut, "p2ptun: ") || strings.Count(errOut, "\n") != 1 {
		t.Errorf("pipe's stderr should be one line starting with \"p2ptun: \", got %q", errOut)
	}
	for _, m := range msg {
		if !strings.Contains(errOut, m) {
			t.Errorf("pipe's stderr %q does not say %q", errOut, m)
		}
	}
}

// sessionTarget serves a little line protocol, the shape of an ssh
// session: a banner, then "echo: LINE" for each line. When the client
// ends its input it writes "bye" and closes. On "quit" it writes "bye"
// and half-closes, then reads what the client still sends and hands it
// to late once the client ends its input.
func sessionTarget(t *testing.T) (addr string, late <-chan string) {
	t.Helper()
	lateCh := make(chan string, 8)
	addr = testnet.Serve(t, func(c *net.TCPConn) {
		io.WriteString(c, "HELLO p2ptun\n")
		r := bufio.NewReader(c)
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				io.WriteString(c, "bye\n")
				return
			}
			if line == "quit\n" {
				io.WriteString(c, "bye\n")
				c.CloseWrite()
				rest, _ := io.ReadAll(r)
				lateCh <- string(rest)
				return
			}
			io.WriteString(c, "echo: "+line)
		}
	})
	return addr, lateCh
}

// meet makes a learn b's addresses, so that a bare peer ID will do.
func meet(t *testing.T, a, b *harness.Daemon) {
	t.Helper()
	if _, errOut, code := a.CLI(t, "ping", "-n", "1", b.Addresses[0]); code != 0 {
		t.Fatalf("ping: %s", errOut)
	}
}

func TestPipeSession(t *testing.T) {
	a, b := startDaemon(t), startDaemon(t)
	target, late := sessionTarget(t)
	if _, errOut, code := b.CLI(t, "listen", "/x/sess", target, "--allow", a.ID); code != 0 {
		t.Fatalf("listen: %s", errOut)
	}

	t.Run("client ends first", func(t *testing.T) {
		// A full address: a has never met b.
		p := startPipe(t, a, b.Addresses[0], "/x/sess")
		p.expect(t, "HELLO p2ptun\n") // before pipe's stdin says anything
		p.send(t, "ls\n")
		p.expect(t, "echo: ls\n")
		p.send(t, "uname -a\n")
		p.expect(t, "echo: uname -a\n")
		p.stdin.Close()
		// The target's last words, written after it read our end of data.
		p.expect(t, "bye\n")
		p.expectEnd(t, ExitOK)
	})

	t.Run("server ends first", func(t *testing.T) {
		// A bare ID, once a knows b's addresses.
		meet(t, a, b)
		p := startPipe(t, a, b.ID, "/x/sess")
		p.expect(t, "HELLO p2ptun\n")
		p.send(t, "quit\n")
		p.expect(t, "bye\n")
		// pipe passes the target's half-close on to its stdout.
		if rest, err := io.ReadAll(p.stdout); err != nil || len(rest) != 0 {
			t.Fatalf("stdout after the target's half-close: %q, %v; want end of file", rest, err)
		}
		// The target has half-closed; what we send still reaches it.
		p.send(t, "late words\n")
		p.stdin.Close()
		select {
		case got := <-late:
			if got != "late words\n" {
				t.Errorf("target read %q after its half-close, want %q", got, "late words\n")
			}
		case <-time.After(20 * time.Second):
			t.Fatalf("target never got the client's end of data; pipe stderr: %s", p.stderr)
		}
		p.expectEnd(t, ExitOK)
	})

	t.Run("listener refuses us", func(t *testing.T) {
		if _, errOut, code := b.CLI(t, "listen", "/x/private", target, "--allow", harness.NewPeerID(t)); code != 0 {
			t.Fatalf("listen: %s", errOut)
		}
		// The stream opens, then b resets it, saying why: pipe exits
		// without waiting for its stdin to end, with the cause.
		p := startPipe(t, a, b.Addresses[0], "/x/private")
		p.expectEnd(t, ExitDenied, "does not allow this node's peer ID", "--allow")
	})

	t.Run("p2p address", func(t *testing.T) {
		meet(t, a, b)
		p := startPipe(t, a, "/p2p/"+b.ID, "/x/sess")
		p.expect(t, "HELLO p2ptun\n")
		p.stdin.Close()
		p.expect(t, "bye\n")
		p.expectEnd(t, ExitOK)
	})
}

func TestPipeBytesIntact(t *testing.T) {
	a, b := startDaemon(t), startDaemon(t)
	if _, errOut, code := b.CLI(t, "listen", "/x/echo", echoTarget(t), "--allow", a.ID); code != 0 {
		t.Fatalf("listen: %s", errOut)
	}
	data := make([]byte, 5<<20+123)
	rand.Read(data)
	want := sha256.Sum256(data)
	h := sha256.New()
	var stderr bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	code := RunStdin(ctx, []string{"--home", a.Home, "pipe", b.Addresses[0], "/x/echo"}, bytes.NewReader(data), h, &stderr)
	if code != 0 {
		t.Fatalf("pipe exited with %d: %s", code, stderr.String())
	}
	if got := h.Sum(nil); !bytes.Equal(got, want[:]) {
		t.Fatalf("sha256 of what came back = %x, want %x", got, want)
	}
}

func TestPipeErrors(t *testing.T) {
	d, other := startDaemon(t), startDaemon(t)
	denier := startDaemon(t, "--deny-peer", other.ID)
	n := &normalizer{}
	n.add(d.ID, "<PEER>")
	n.add(other.ID, "<OTHER>")
	n.add(denier.ID, "<DENIER>")

	// A peer no daemon has met, at an address where nothing listens.
	ghost := harness.NewPeerID(t)
	n.add(ghost, "<GHOST>")
	deadAddr := fmt.Sprintf("/ip4/127.0.0.1/tcp/%d/p2p/%s", testnet.FreePort(t), ghost)
	noHome := harness.TempHome(t)
	n.add(noHome, "<NOHOME>")

	cases := []struct {
		name string
		home string
		args []string
		code int
	}{
		{"unreachable peer", d.Home, []string{deadAddr, "/x/ssh"}, ExitUnreachable},
		{"no such protocol", d.Home, []string{other.Addresses[0], "/x/none"}, ExitUnreachable},
		{"denied peer", denier.Home, []string{other.Addresses[0], "/x/ssh"}, ExitDenied},
		{"refused by the peer's access policy", other.Home, []string{denier.Addresses[0], "/x/ssh"}, ExitDenied},
		{"bad peer ID", d.Home, []string{"/p2p/QmNope", "/x/ssh"}, ExitUsage},
		{"peer address without /p2p", d.Home, []string{"/ip4/127.0.0.1/tcp/1", "/x/ssh"}, ExitUsage},
		{"protocol outside /x/", d.Home, []string{other.ID, "/ssh"}, ExitUsage},
		{"missing protocol", d.Home, []string{other.ID}, ExitUsage},
		{"pipe to self", d.Home, []string{d.ID, "/x/ssh"}, ExitUsage},
		{"no daemon", noHome, []string{other.Addresses[0], "/x/ssh"}, ExitDaemonNotRunning},
	}
	var all strings.Builder
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			stdin := strings.NewReader("never read")
			code := RunStdin(ctx, append([]string{"--home", tc.home, "pipe"}, tc.args...), stdin, &out, &errOut)
			if code != tc.code {
				t.Errorf("exit code %d, want %d (stderr %q)", code, tc.code, errOut.String())
			}
			if out.Len() != 0 || stdin.Len() != len("never read") {
				t.Errorf("stdout %q, %d bytes of stdin read; want neither", out.String(), len("never read")-stdin.Len())
			}
			if s := errOut.String(); !strings.HasPrefix(s, "p2ptun: ") || strings.Count(s, "\n") != 1 {
				t.Errorf("stderr should be one line starting with \"p2ptun: \", got %q", s)
			}
			fmt.Fprintf(&all, "# %s (exit %d)\n%s", tc.name, code, n.apply(errOut.String()))
		})
	}
	golden(t, "pipe-errors.golden", all.String())
	// Nothing was left behind.
	if out, _, _ := d.CLI(t, "stream", "ls"); out != "" {
		t.Errorf("streams left behind by failed pipes:\n%s", out)
	}
}

// TestPipeListedClosedAndShutdown checks that a pipe is a stream like
// any other: listed, closed by `stream close`, and ended when the daemon
// stops, with nothing left running.
func TestPipeListedClosedAndShutdown(t *testing.T) {
	target := echoTarget(t) // ends at cleanup, after the leak check
	before := goleak.IgnoreCurrent()
	a, b := startDaemon(t), startDaemon(t)
	if _, errOut, code := b.CLI(t, "listen", "/x/echo", target, "--allow", a.ID); code != 0 {
		t.Fatalf("listen: %s", errOut)
	}
	type stream struct {
		HandlerID, Kind, Protocol, OriginAddress, TargetAddress string
		ListenerID, BytesIn, BytesOut                           int64
	}
	streams := func(d *harness.Daemon) []stream {
		out, errOut, code := d.CLI(t, "stream", "ls", "--json")
		var l struct{ Streams []stream }
		if code != 0 || json.Unmarshal([]byte(out), &l) != nil {
			t.Fatalf("stream ls: %d %q %q", code, out, errOut)
		}
		return l.Streams
	}

	p1 := startPipe(t, a, b.Addresses[0], "/x/echo")
	p1.send(t, "one")
	p1.expect(t, "one")
	var s []stream
	waitUntil(t, "the pipe's counters", func() bool {
		s = streams(a)
		return len(s) == 1 && s[0].BytesIn == 3 && s[0].BytesOut == 3
	})
	if got := s[0]; got.Kind != "pipe" || got.Protocol != "/x/echo" || got.TargetAddress != "/p2p/"+b.ID ||
		got.ListenerID != 0 || !strings.HasPrefix(got.OriginAddress, "/unix/") {
		t.Errorf("pipe's stream entry = %+v", got)
	}
	first := s[0].HandlerID
	if s := streams(b); len(s) != 1 || s[0].Kind != "listen" {
		t.Errorf("b's streams = %+v, want the listen side of the pipe", s)
	}

	p2 := startPipe(t, a, b.ID, "/x/echo")
	p2.send(t, "two")
	p2.expect(t, "two")
	s = streams(a)
	if len(s) != 2 {
		t.Fatalf("a's streams with two pipes = %+v", s)
	}
	out, errOut, code := a.CLI(t, "stream", "close", s[1].HandlerID)
	if code != 0 || out != "closed 1 stream\n" {
		t.Fatalf("stream close: %d %q %q", code, out, errOut)
	}
	p2.expectEnd(t, ExitFailure, "reset")
	if s := streams(a); len(s) != 1 || s[0].HandlerID != first {
		t.Errorf("a's streams after closing one pipe = %+v", s)
	}

	// The daemon stops (and exits 0, startDaemon checks) with a pipe open.
	a.Stop(t)
	p1.expectEnd(t, ExitFailure, "reset")
	// Each pipe's stdin reader ends with its stdin; then nothing is left.
	p1.stdin.Close()
	p2.stdin.Close()
	b.Stop(t)
	goleak.VerifyNone(t, before)
}

func TestPipeTakesATicket(t *testing.T) {
	a, b := startDaemon(t), startDaemon(t)
	if _, errOut, code := b.CLI(t, "listen", "/x/echo", echoTarget(t), "--allow", a.ID); code != 0 {
		t.Fatalf("listen: %s", errOut)
	}
	out, errOut, code := b.CLI(t, "share", "/x/echo")
	if code != 0 {
		t.Fatalf("share: %s", errOut)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var got, stderr bytes.Buffer
	// a has never met b: the ticket's addresses are all it has.
	code = RunStdin(ctx, []string{"--home", a.Home, "pipe", strings.TrimSpace(out)}, strings.NewReader("ticket"), &got, &stderr)
	if code != 0 || got.String() != "ticket" {
		t.Fatalf("pipe TICKET = %d, %q, %s; want the echo", code, got.String(), stderr.String())
	}

	// An invite is refused: it is for forward, which redeems it.
	if _, errOut, code := b.CLI(t, "listen", "/x/inv", echoTarget(t), "--invite-only"); code != 0 {
		t.Fatalf("listen: %s", errOut)
	}
	out, _, _ = b.CLI(t, "share", "/x/inv", "--invite")
	stderr.Reset()
	code = RunStdin(ctx, []string{"--home", a.Home, "pipe", strings.TrimSpace(out)}, strings.NewReader(""), io.Discard, &stderr)
	if code != ExitUsage || !strings.Contains(stderr.String(), "redeem it once with `p2ptun forward") {
		t.Fatalf("pipe INVITE = %d %q; want exit 2 saying to redeem it with forward", code, stderr.String())
	}
}
