//go:build linux

package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/p2ptun/p2ptun/internal/harness"
)

// partKeepalive is the daemons' timeouts.keepalive in the partition test,
// short to keep the test quick.
const partKeepalive = 3 * time.Second

// partDetect bounds how long after the partition every connection across
// it must have ended (see testPartition).
const partDetect = 10 * time.Second

// partConfig is the daemons' config.toml: the keepalive, and a dial
// timeout as short, so that a connection attempted during the partition
// is refused soon too.
var partConfig = fmt.Sprintf("[timeouts]\nkeepalive = %q\ndial = %q\n", partKeepalive.String(), partKeepalive.String())

// partRules, loaded into the router, is the partition: every packet
// between a and b vanishes, neither refused (no RST, no ICMP error) nor
// visible to either host (their own links stay up), as when a link
// further along dies.
const partRules = `
table inet partition {
	chain forward {
		type filter hook forward priority 0; policy drop;
	}
}
`

// partHosts are the two hosts of the partition lab: a's network and b's,
// each routed through the router namespace.
var partHosts = []struct{ role, net, ip string }{
	{"partA", "10.78.1", "10.78.1.2"},
	{"partB", "10.78.2", "10.78.2.2"},
}

// TestPartitionEndsConnectionsAndHeals cuts the network between two
// daemons without closing anything, as a dead link or a pulled cable
// does, and checks that the keepalive notices: every tunnelled connection,
// idle or mid-transfer, ends with a reset within a bound far above the
// keepalive, neither hanging nor ending as if the service had closed it;
// so does a connection tried during the partition. Once the network is
// back, a new connection through the same forward works with neither
// daemon restarted. Over TCP (yamux's keepalive and the node's ping) and
// over QUIC (the node's ping alone).
//
//	partA 10.78.1.2 ─ partR 10.78.1.1 | 10.78.2.1 ─ partB 10.78.2.2
func TestPartitionEndsConnectionsAndHeals(t *testing.T) {
	natRequire(t, "to drop the packets of the partition")
	ns := natNamespaces(t, "partA", "partR", "partB")
	router := ns["partR"]
	for i, h := range partHosts {
		host, port := ns[h.role], fmt.Sprintf("eth%d", i)
		// Each veth is created inside the namespaces, never in the host's.
		natCmd(t, "", "ip", "-n", router, "link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", host)
		natCmd(t, "", "ip", "-n", router, "addr", "add", h.net+".1/24", "dev", port)
		natCmd(t, "", "ip", "-n", router, "link", "set", port, "up")
		natCmd(t, "", "ip", "-n", host, "addr", "add", h.ip+"/24", "dev", "eth0")
		natCmd(t, "", "ip", "-n", host, "link", "set", "eth0", "up")
		natCmd(t, "", "ip", "-n", host, "route", "add", "default", "via", h.net+".1")
	}
	natCmd(t, "", "ip", "netns", "exec", router, "sh", "-c", "echo 1 > /proc/sys/net/ipv4/ip_forward")

	b := partHosts[1].ip
	for _, tc := range []partCase{
		// yamux's own keepalive may cut the connection first, before the
		// node's ping gives up; then its error ends the streams.
		{"tcp", "/ip4/0.0.0.0/tcp/" + natPort, "/ip4/" + b + "/tcp/" + natPort, []string{partNodeCut, "keepalive timeout", "connection write timeout"}},
		// QUIC has no keepalive of the node's timing: only its ping.
		{"quic", "/ip4/0.0.0.0/udp/" + natPort + "/quic-v1", "/ip4/" + b + "/udp/" + natPort + "/quic-v1", []string{partNodeCut}},
	} {
		t.Run(tc.name, func(t *testing.T) { testPartition(t, ns, tc) })
	}
}

// partNodeCut is what a daemon logs when the node's keepalive ping cuts a
// peer off.
const partNodeCut = "peer answered no ping within the keepalive"

// partCase is one transport for the partition test: the daemons listen on
// listen only, a reaches b at dial, and one of the daemons' logs has one
// of cutBy once the keepalive has ended the connections.
type partCase struct {
	name, listen, dial string
	cutBy              []string
}

// testPartition runs the partition and its healing once.
func testPartition(t *testing.T, ns map[string]string, tc partCase) {
	bin := harness.Binary(t)
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	t.Cleanup(cancel)
	args := []string{"daemon", "--listen-addr", tc.listen, "--dht", "off"}
	b := natStartDaemonWith(t, ctx, ns["partB"], bin, partConfig, nil, args...)
	a := natStartDaemonWith(t, ctx, ns["partA"], bin, partConfig, nil, args...)
	a.name, b.name = "daemon a", "daemon b"
	t.Cleanup(func() {
		if t.Failed() {
			for _, d := range []*natDaemon{a, b} {
				t.Logf("%s log:\n%s", d.name, d.logs)
			}
		}
	})
	bID := b.waitReady(t).ID
	aID := a.waitReady(t).ID

	echoFile := filepath.Join(t.TempDir(), "echo.addr")
	echo := natStart(t, ctx, ns["partB"], "echo", natHelper("echo", "127.0.0.1:0", echoFile, ""), self, "-test.run=^TestNATHelperProcess$")
	echoAddr := natWaitAddrFile(t, echoFile, echo)
	if out, errOut, code := harness.Run(t, "--home", b.home, "listen", "/x/part", echoAddr, "--allow", aID); code != 0 {
		t.Fatalf("listen on b exited %d: %s%s", code, out, errOut)
	}
	out, errOut, code := harness.Run(t, "--home", a.home, "forward", "/x/part", "127.0.0.1:0", tc.dial+"/p2p/"+bID)
	if code != 0 {
		t.Fatalf("forward on a exited %d: %s%s", code, out, errOut)
	}
	fwd := harness.HostPort(t, strings.TrimSpace(out))

	// Idle connections, and one that is moving data when the network goes.
	var clients []*natConn
	names := map[*natConn]string{}
	for i := range 3 {
		c := natStartClient(t, ctx, ns["partA"], "hold", fwd, fmt.Sprintf("idle %d", i), self)
		names[c] = fmt.Sprintf("idle client %d", i)
		if l := c.next(t, names[c], time.Now().Add(20*time.Second)); l.text != "echoed" {
			t.Fatalf("%s through the tunnel: %q, want its payload echoed", names[c], l.text)
		}
		clients = append(clients, c)
	}
	flowing := natStartClient(t, ctx, ns["partA"], "stream", fwd, "stream", self)
	names[flowing] = "streaming client"
	for _, want := range []string{"echoed", "flowing"} {
		if l := flowing.next(t, names[flowing], time.Now().Add(20*time.Second)); l.text != want {
			t.Fatalf("streaming client through the tunnel: %q, want %q", l.text, want)
		}
	}
	clients = append(clients, flowing)
	if n := len(natStreamPaths(t, a.home, "/x/part")); n != len(clients) {
		t.Fatalf("a lists %d tunnel streams, want one for each of the %d clients", n, len(clients))
	}

	heal := partition(t, ns["partR"])
	cut := time.Now()
	// A bound against hanging, well above the keepalive (over TCP with
	// TLS, closing a connection with data in flight adds 5s: crypto/tls
	// sends its close_notify with that write deadline). It is below what
	// ends a partitioned connection without the keepalive: QUIC's own 30s
	// idle timeout, and yamux's default 10s write timeout (plus those 5s)
	// for a TCP connection with data in flight.
	deadline := cut.Add(partDetect)
	var took []string
	for _, c := range clients {
		l := c.next(t, names[c]+" across the partition", deadline)
		if !strings.HasPrefix(l.text, "end: reset") || l.at.Before(cut) {
			t.Fatalf("%s across the partition: %q %v after the cut, want the connection reset once the keepalive gives up on the peer", names[c], l.text, l.at.Sub(cut).Round(10*time.Millisecond))
		}
		took = append(took, fmt.Sprintf("%s %v", names[c], l.at.Sub(cut).Round(10*time.Millisecond)))
	}
	t.Logf("keepalive %v; client connections reset after the partition: %s", partKeepalive, strings.Join(took, ", "))
	if line := partLogLine(tc.cutBy, a, b); line == "" {
		t.Errorf("neither daemon's log says the keepalive cut the peer off (%q)", tc.cutBy)
	} else {
		t.Logf("cut off by the keepalive: %s", line)
	}
	natWait(t, a.natProc, "a to list no tunnel streams after the partition", 5*time.Second, func() bool {
		return len(natStreamPaths(t, a.home, "/x/part")) == 0
	})
	for _, d := range []*natDaemon{a, b} {
		select {
		case <-d.exited:
			t.Fatalf("%s exited (%v) during the partition", d.name, d.err)
		default:
		}
	}

	// A connection tried during the partition is refused (reset) once the
	// dial times out, neither hanging nor looking like a clean close.
	tried := time.Now()
	during := natStartClient(t, ctx, ns["partA"], "hold", fwd, "during", self)
	if l := during.next(t, "a client during the partition", tried.Add(partDetect)); !strings.HasPrefix(l.text, "end: reset") {
		t.Fatalf("a client during the partition: %q, want it reset: b is unreachable", l.text)
	}
	t.Logf("a client during the partition was reset after %v (timeouts.dial %v)", time.Since(tried).Round(10*time.Millisecond), partKeepalive)

	heal()
	healed := time.Now()
	logged := len(a.logs.String())
	var got string
	// Nothing is restarted: the forward dials b again. The forward's dial
	// during the partition may have left go-libp2p's dial backoff on b's
	// address (when it fails by the dial's deadline rather than by its
	// cancellation), and the swarm refuses re-dials until it expires: 5s,
	// and more after each failure. Hence the generous bound; the log says
	// how many attempts the backoff refused.
	natWait(t, a.natProc, "a connection through a's forward to work once the network is back", 40*time.Second, func() bool {
		got, err = natClientOnce(ctx, ns["partA"], fwd, "healed", self)
		return err == nil
	})
	if got != "healed\n" {
		t.Fatalf("after the partition healed, the tunnel echoed %q, want %q", got, "healed\n")
	}
	t.Logf("a new connection worked %v after the network came back; %s", time.Since(healed).Round(10*time.Millisecond), partRefusals(a.logs.String()[logged:]))
}

// partition loads partRules into the router namespace and returns the
// function that removes them. If the test ends first, cleanup does, so
// that the next test finds the network whole.
func partition(t *testing.T, router string) (heal func()) {
	t.Helper()
	natCmd(t, partRules, "ip", "netns", "exec", router, "nft", "-f", "-")
	var once sync.Once
	heal = func() {
		once.Do(func() { natCmd(t, "", "ip", "netns", "exec", router, "nft", "delete", "table", "inet", "partition") })
	}
	t.Cleanup(heal)
	return heal
}

// partLogLine returns the first line of the daemons' logs that contains
// one of subs, prefixed with the daemon's name, or "".
func partLogLine(subs []string, ds ...*natDaemon) string {
	for _, d := range ds {
		for l := range strings.Lines(d.logs.String()) {
			for _, sub := range subs {
				if strings.Contains(l, sub) {
					return d.name + ": " + strings.TrimSpace(l)
				}
			}
		}
	}
	return ""
}

// partRefusals summarises why the forward refused the connections in log
// (the attempts before recovery).
func partRefusals(log string) string {
	var n, backoff int
	for l := range strings.Lines(log) {
		if strings.Contains(l, "stream open failed") {
			n++
			if strings.Contains(l, "dial backoff") {
				backoff++
			}
		}
	}
	return fmt.Sprintf("%d earlier attempts refused, %d of them by the swarm's dial backoff", n, backoff)
}
