package main

// SOCKS5 dynamic forwarding end to end: two daemons (the built binary) on
// loopback, A's `forward --socks` and B's `listen --egress`, driven by a
// real SOCKS5 client, curl, against loopback HTTP services.

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/p2ptun/p2ptun/internal/harness"
	"github.com/p2ptun/p2ptun/internal/testnet"
)

// countingServer is an HTTP service on 127.0.0.1 that answers body and
// counts the connections it accepted, so that a test can tell the egress
// never dialled it.
type countingServer struct {
	*httptest.Server
	conns atomic.Int64
	port  int
}

func newCountingServer(t *testing.T, body string, h http.HandlerFunc) *countingServer {
	t.Helper()
	if h == nil {
		h = func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, body) }
	}
	s := &countingServer{Server: httptest.NewUnstartedServer(h)}
	s.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			s.conns.Add(1)
		}
	}
	s.Start()
	t.Cleanup(s.Close)
	s.port = s.Listener.Addr().(*net.TCPAddr).Port
	return s
}

// curlSocks fetches url through the SOCKS5 server at proxy, names resolved
// by the proxy (--socks5-hostname), and returns its output and exit code.
func curlSocks(t *testing.T, proxy, url string) (out, errOut string, code int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "curl", "-sS", "--max-time", "30", "--socks5-hostname", proxy, url)
	cmd.Env = append(os.Environ(), "ALL_PROXY=", "all_proxy=", "NO_PROXY=", "no_proxy=")
	var o, e strings.Builder
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		return o.String(), e.String(), ee.ExitCode()
	} else if err != nil {
		t.Fatalf("curl: %v", err)
	}
	return o.String(), e.String(), 0
}

// forwardAddr is the host:port of d's listener named name, from ls --json.
func forwardAddr(t *testing.T, d *harness.Daemon, name string) string {
	t.Helper()
	out, errOut, code := d.CLI(t, "ls", "--json")
	if code != 0 {
		t.Fatalf("ls: exit %d: %s", code, errOut)
	}
	var ls struct {
		Listeners []struct {
			Name, ListenAddress string
			Socks               bool
		}
	}
	if err := json.Unmarshal([]byte(out), &ls); err != nil {
		t.Fatalf("ls --json: %v: %s", err, out)
	}
	for _, l := range ls.Listeners {
		if l.Name == name {
			if !l.Socks {
				t.Fatalf("ls --json: %s is not a SOCKS forward: %s", name, out)
			}
			return harness.HostPort(t, l.ListenAddress)
		}
	}
	t.Fatalf("no listener named %s: %s", name, out)
	return ""
}

// streamDests returns the Destination and TargetAddress of d's live
// streams, from stream ls --json.
func streamDests(t *testing.T, d *harness.Daemon) map[string]string {
	t.Helper()
	out, errOut, code := d.CLI(t, "stream", "ls", "--json")
	if code != 0 {
		t.Fatalf("stream ls: exit %d: %s", code, errOut)
	}
	var ls struct {
		Streams []struct{ Destination, TargetAddress string }
	}
	if err := json.Unmarshal([]byte(out), &ls); err != nil {
		t.Fatalf("stream ls --json: %v: %s", err, out)
	}
	m := map[string]string{}
	for _, s := range ls.Streams {
		m[s.Destination] = s.TargetAddress
	}
	return m
}

// streamErrors is p2ptun_stream_errors_total{cause} on d's /metrics.
func streamErrors(t *testing.T, d *harness.Daemon, cause string) float64 {
	t.Helper()
	v, _ := harness.MetricValue(harness.Scrape(t, d.Metrics)["p2ptun_stream_errors_total"], "cause", cause)
	return v
}

// refusedWith fetches url through proxy and checks that curl fails with
// a SOCKS proxy error (exit 97) for reply code reply, and that the
// forward's daemon d reports a failed stream with cause, in its events
// (naming dest, the destination the client asked for) and its metrics.
func refusedWith(t *testing.T, d *harness.Daemon, events <-chan harness.Event, proxy, url, dest string, reply int, cause string) {
	t.Helper()
	before := streamErrors(t, d, cause)
	out, errOut, code := curlSocks(t, proxy, url)
	if code != 97 || !strings.Contains(errOut, fmt.Sprintf("(%d)", reply)) {
		t.Fatalf("curl: exit %d, %q %s; want exit 97 (a proxy error), SOCKS reply %d", code, out, errOut, reply)
	}
	t.Logf("curl: exit %d: %s", code, errOut)
	if ev := harness.NextEvent(t, events, 20*time.Second, "stream_failed "+cause, func(e harness.Event) bool {
		return e.Type == "stream_failed" && e.Reason == cause
	}); ev.Destination != dest {
		t.Errorf("stream_failed %s names destination %q, want %q", cause, ev.Destination, dest)
	}
	if after := streamErrors(t, d, cause); after != before+1 {
		t.Fatalf("p2ptun_stream_errors_total{cause=%s} went from %v to %v", cause, before, after)
	}
}

func TestSocksThroughCurl(t *testing.T) {
	if _, err := exec.LookPath("curl"); err != nil {
		t.Skip("curl is not installed (Debian package curl): the SOCKS5 tests need a real SOCKS5 client")
	}
	release := make(chan struct{})
	byName := newCountingServer(t, "by name", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			<-release // held open until the test has seen the stream listed
		}
		io.WriteString(w, "by name")
	})
	byCIDR := newCountingServer(t, "by cidr", nil)
	forbidden := newCountingServer(t, "forbidden", nil)
	closed := testnet.FreePort(t) // nobody listens there

	aHome, aID := harness.InitHome(t, nil)
	bHome, bID := harness.InitHome(t, nil)
	bSwarm := fmt.Sprintf("/ip4/127.0.0.1/tcp/%d", testnet.FreePort(t))
	egress := func(extra string) string {
		return fmt.Sprintf(`
[[listen]]
name = "net"
protocol = "/x/net"
egress = true
allow = [%q]
permit = ["localhost:%d", "127.0.0.0/8:%d", "127.0.0.1:%d", "*.invalid:*"%s]
`, aID, byName.port, byCIDR.port, closed, extra)
	}
	harness.WriteConfig(t, bHome, egress(""))
	harness.WriteConfig(t, aHome, fmt.Sprintf(`
[[forward]]
name = "net"
protocol = "/x/net"
listen = "127.0.0.1:0"
peer = "%s/p2p/%s"
socks = true
`, bSwarm, bID))
	b := harness.Start(t, harness.Spec{Home: bHome, ListenAddr: bSwarm})
	a := harness.Start(t, harness.Spec{Home: aHome, Args: []string{"--metrics", "127.0.0.1:0"}})
	if out, errOut, code := a.CLI(t, "wait", "--timeout", "20s"); code != 0 {
		t.Fatalf("wait: exit %d: %s%s\n%s", code, out, errOut, a.Logs)
	}
	events, bEvents := a.Events(t), b.Events(t)
	proxy := forwardAddr(t, a, "net")
	// An egress has no target: its "listener opened" line says what it may dial.
	b.Until(t, 20*time.Second, "the egress's listener opened", func() bool { return strings.Contains(b.Logs.String(), "listener opened") })
	if line := lineWith(b.Logs.String(), "listener opened"); !strings.Contains(line, fmt.Sprintf("permit=\"[localhost:%d ", byName.port)) || strings.Contains(line, "target=") {
		t.Errorf("the egress's log line does not list its permit rules: %s", line)
	}

	t.Run("permitted by name, resolved on the far side", func(t *testing.T) {
		out, errOut, code := curlSocks(t, proxy, fmt.Sprintf("http://localhost:%d/", byName.port))
		if code != 0 || out != "by name" {
			t.Fatalf("curl: exit %d, %q %s\nA:\n%s\nB:\n%s", code, out, errOut, a.Logs, b.Logs)
		}
		// Both the stream's events name the destination the client asked for.
		dest := fmt.Sprintf("localhost:%d", byName.port)
		for _, typ := range []string{"stream_open", "stream_close"} {
			if ev := harness.NextEvent(t, events, 20*time.Second, typ, func(e harness.Event) bool { return e.Type == typ }); ev.Destination != dest {
				t.Errorf("%s names destination %q, want %q", typ, ev.Destination, dest)
			}
		}
	})
	t.Run("permitted by CIDR", func(t *testing.T) {
		out, errOut, code := curlSocks(t, proxy, fmt.Sprintf("http://127.0.0.1:%d/", byCIDR.port))
		if code != 0 || out != "by cidr" {
			t.Fatalf("curl: exit %d, %q %s", code, out, errOut)
		}
	})
	t.Run("listed with its destination", func(t *testing.T) {
		done := make(chan string, 1)
		go func() {
			out, errOut, code := curlSocks(t, proxy, fmt.Sprintf("http://localhost:%d/slow", byName.port))
			done <- fmt.Sprintf("exit %d, %q %s", code, out, errOut)
		}()
		dest := fmt.Sprintf("localhost:%d", byName.port)
		harness.Until(t, 20*time.Second, "the SOCKS stream in both daemons' stream ls", func() bool {
			return streamDests(t, a)[dest] == "/p2p/"+bID &&
				streamDests(t, b)[dest] == fmt.Sprintf("/ip4/127.0.0.1/tcp/%d", byName.port)
		})
		if out, _, _ := a.CLI(t, "stream", "ls"); !strings.Contains(out, "/p2p/"+bID+"("+dest+")") {
			t.Errorf("stream ls does not show the destination:\n%s", out)
		}
		close(release)
		if got := <-done; got != `exit 0, "by name" ` {
			t.Fatalf("curl: %s", got)
		}
	})
	t.Run("not permitted", func(t *testing.T) {
		dest := fmt.Sprintf("127.0.0.1:%d", forbidden.port)
		refusedWith(t, a, events, proxy, fmt.Sprintf("http://%s/", dest), dest, 2, "socks_not_allowed")
		if n := forbidden.conns.Load(); n != 0 {
			t.Fatalf("the egress connected to a destination no rule permits (%d connections)", n)
		}
		// The egress names what it refused too.
		if ev := harness.NextEvent(t, bEvents, 20*time.Second, "the egress's stream_failed", func(e harness.Event) bool {
			return e.Type == "stream_failed" && e.Reason == "socks_not_allowed"
		}); ev.Destination != dest || ev.Peer != aID {
			t.Errorf("the egress's stream_failed names %q from %s, want %q from %s", ev.Destination, ev.Peer, dest, aID)
		}
		harness.Until(t, 20*time.Second, "both sides logging the refusal", func() bool {
			return strings.Contains(lineWith(a.Logs.String(), "SOCKS request refused"), "dest="+dest) &&
				strings.Contains(lineWith(b.Logs.String(), "SOCKS egress: request refused"), "peer="+aID)
		})
		t.Logf("A: %s\nB: %s", lineWith(a.Logs.String(), "SOCKS request refused"), lineWith(b.Logs.String(), "SOCKS egress: request refused"))
	})
	t.Run("name that does not resolve", func(t *testing.T) {
		refusedWith(t, a, events, proxy, "http://nothing.invalid/", "nothing.invalid:80", 4, "socks_host_unreachable")
	})
	t.Run("target refused", func(t *testing.T) {
		dest := fmt.Sprintf("127.0.0.1:%d", closed)
		refusedWith(t, a, events, proxy, "http://"+dest+"/", dest, 5, "socks_refused")
	})
	t.Run("permitted after reload", func(t *testing.T) {
		harness.WriteConfig(t, bHome, egress(fmt.Sprintf(", \"127.0.0.1:%d\"", forbidden.port)))
		if out, errOut, code := b.CLI(t, "reload"); code != 0 {
			t.Fatalf("reload: exit %d: %s%s", code, out, errOut)
		}
		out, errOut, code := curlSocks(t, proxy, fmt.Sprintf("http://127.0.0.1:%d/", forbidden.port))
		if code != 0 || out != "forbidden" {
			t.Fatalf("curl after reload: exit %d, %q %s\nB:\n%s", code, out, errOut, b.Logs)
		}
	})
	t.Run("from the command line", func(t *testing.T) {
		if out, errOut, code := b.CLI(t, "listen", "/x/net2", "--egress", "--permit", fmt.Sprintf("127.0.0.1:%d", byCIDR.port), "--allow", aID); code != 0 {
			t.Fatalf("listen --egress: exit %d: %s%s", code, out, errOut)
		}
		out, errOut, code := a.CLI(t, "forward", "/x/net2", "127.0.0.1:0", bSwarm+"/p2p/"+bID, "--socks", "--name", "net2")
		if code != 0 {
			t.Fatalf("forward --socks: exit %d: %s%s", code, out, errOut)
		}
		proxy2 := forwardAddr(t, a, "net2")
		if out, _, _ := a.CLI(t, "ls"); !strings.Contains(out, "socks:/p2p/"+bID) {
			t.Errorf("ls does not show the SOCKS forward:\n%s", out)
		}
		if out, _, _ := b.CLI(t, "ls"); !strings.Contains(out, fmt.Sprintf("egress:127.0.0.1:%d", byCIDR.port)) {
			t.Errorf("ls does not show the egress and its rules:\n%s", out)
		}
		if out, errOut, code := curlSocks(t, proxy2, fmt.Sprintf("http://127.0.0.1:%d/", byCIDR.port)); code != 0 || out != "by cidr" {
			t.Fatalf("curl: exit %d, %q %s", code, out, errOut)
		}
		// The same destination is not permitted by the first egress's
		// rules on another port.
		if _, errOut, code := curlSocks(t, proxy2, fmt.Sprintf("http://localhost:%d/", byName.port)); code != 97 {
			t.Fatalf("curl to a destination /x/net2 does not permit: exit %d %s", code, errOut)
		}
	})
	t.Run("bad input", func(t *testing.T) {
		for _, args := range [][]string{
			{"listen", "/x/net3", "--egress", "--allow", aID},
			{"listen", "/x/net3", "--egress", "--permit", "*:22", "--allow", aID},
			{"listen", "/x/net3", "127.0.0.1:22", "--permit", "10.0.0.0/8:22", "--allow", aID},
			{"forward", "/x/net3", "0.0.0.0:0", "/p2p/" + bID, "--socks"},
		} {
			out, errOut, code := a.CLI(t, args...)
			if code != 2 || strings.Count(strings.TrimSpace(errOut), "\n") != 0 {
				t.Errorf("%v: exit %d, %q %q; want exit 2 and one line", args, code, out, errOut)
			}
		}
		ls, _, _ := a.CLI(t, "ls")
		if strings.Contains(ls, "/x/net3") {
			t.Fatalf("a refused tunnel is listed:\n%s", ls)
		}
	})
}

// lineWith returns the first line of s that contains sub.
func lineWith(s, sub string) string {
	for line := range strings.Lines(s) {
		if strings.Contains(line, sub) {
			return strings.TrimSpace(line)
		}
	}
	return ""
}
