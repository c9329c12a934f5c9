package cli

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/p2ptun/p2ptun/api"
	"github.com/p2ptun/p2ptun/internal/harness"
	"github.com/p2ptun/p2ptun/internal/testnet"
)

// udpForward makes b listen on /x/dns for a, with target, and a forward
// a UDP port to it; it returns the forward's host:port.
func udpForward(t *testing.T, a, b *harness.Daemon, target string) string {
	t.Helper()
	if _, errOut, code := b.CLI(t, "listen", "/x/dns", target, "--allow", a.ID); code != 0 {
		t.Fatalf("listen: %d %s", code, errOut)
	}
	out, errOut, code := a.CLI(t, "forward", "/x/dns", "/ip4/127.0.0.1/udp/0", b.Addresses[0])
	if code != 0 {
		t.Fatalf("forward: %d %s", code, errOut)
	}
	return harness.UDPHostPort(t, out)
}

// udpClient is a UDP socket connected to addr, closed at cleanup.
func udpClient(t *testing.T, addr string) *net.UDPConn {
	t.Helper()
	ua, err := net.ResolveUDPAddr("udp4", addr)
	if err != nil {
		t.Fatal(err)
	}
	c, err := net.DialUDP("udp4", nil, ua)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// ask sends q on c and returns the first datagram back; no answer within
// a generous bound fails the test (a lost datagram, not a slow one).
func ask(c *net.UDPConn, q []byte) ([]byte, error) {
	if _, err := c.Write(q); err != nil {
		return nil, err
	}
	buf := make([]byte, 2048)
	_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
	n, err := c.Read(buf)
	return buf[:n], err
}

func streamList(t *testing.T, d *harness.Daemon) []api.Stream {
	t.Helper()
	out, errOut, code := d.CLI(t, "stream", "ls", "--json")
	var l api.StreamList
	if code != 0 || json.Unmarshal([]byte(out), &l) != nil {
		t.Fatalf("stream ls --json = %d %q %q", code, out, errOut)
	}
	return l.Streams
}

func TestUDPRequestResponseFromManyClients(t *testing.T) {
	a, b := startDaemon(t), startDaemon(t)
	target := testnet.ServeUDP(t, func(q []byte) []byte { return append([]byte("answer to "), q...) })
	addr := udpForward(t, a, b, target.Addr)

	const clients, queries = 50, 5
	var wg sync.WaitGroup
	conns := make([]*net.UDPConn, clients)
	for i := range conns {
		conns[i] = udpClient(t, addr)
	}
	for i, c := range conns {
		wg.Go(func() {
			for j := range queries {
				q := fmt.Sprintf("client %d query %d", i, j)
				got, err := ask(c, []byte(q))
				if err != nil || string(got) != "answer to "+q {
					t.Errorf("client %d: %q, %v; want the answer to %q", i, got, err, q)
					return
				}
			}
		})
	}
	wg.Wait()

	// Each client address is a flow, one stream, on both sides; the
	// addresses say UDP.
	if s := streamList(t, a); len(s) != clients || !strings.Contains(s[0].OriginAddress, "/udp/") || s[0].Kind != "forward" {
		t.Fatalf("a's streams: %d, first %+v; want %d forward flows from /udp/ clients", len(s), s[0], clients)
	}
	if s := streamList(t, b); len(s) != clients || s[0].TargetAddress != target.Addr {
		t.Fatalf("b's streams: %d, first %+v; want %d to %s", len(s), s[0], clients, target.Addr)
	}
	out, _, _ := a.CLI(t, "ls", "--json")
	var ls api.ListenerList
	if json.Unmarshal([]byte(out), &ls) != nil || len(ls.Listeners) != 1 || !strings.Contains(ls.Listeners[0].ListenAddress, "/udp/") {
		t.Fatalf("a's ls --json = %s; want the forward's /udp/ address", out)
	}

	// `stream close` ends flows like connections, on both sides; a
	// client's next datagram opens a new one.
	if out, errOut, code := a.CLI(t, "stream", "close", "-a"); code != 0 {
		t.Fatalf("stream close -a = %d %q %q", code, out, errOut)
	}
	harness.Until(t, 30*time.Second, "every flow gone on both sides", func() bool { return len(streamList(t, a)) == 0 && len(streamList(t, b)) == 0 })
	if got, err := ask(conns[0], []byte("again")); err != nil || string(got) != "answer to again" {
		t.Fatalf("after stream close: %q, %v", got, err)
	}
}

// checked is a datagram that carries its sequence number, a payload and
// a checksum of both.
func checked(seq uint32, size int) []byte {
	d := binary.BigEndian.AppendUint32(nil, seq)
	payload := make([]byte, size)
	_, _ = rand.Read(payload)
	d = append(d, payload...)
	sum := sha256.Sum256(d)
	return append(d, sum[:8]...)
}

// verify returns d's sequence number, if its checksum holds.
func verify(d []byte) (uint32, bool) {
	if len(d) < 12 {
		return 0, false
	}
	sum := sha256.Sum256(d[:len(d)-8])
	return binary.BigEndian.Uint32(d), bytes.Equal(sum[:8], d[len(d)-8:])
}

func TestUDPTenThousandDatagramsEachWay(t *testing.T) {
	a, b := startDaemon(t), startDaemon(t)
	var good, bad atomic.Int64
	// The target checks each datagram and answers with one of its own,
	// another size and other bytes, under the same number.
	target := testnet.ServeUDP(t, func(q []byte) []byte {
		seq, ok := verify(q)
		if !ok {
			bad.Add(1)
			return nil
		}
		good.Add(1)
		return checked(seq, int(seq*7%1300))
	})
	c := udpClient(t, udpForward(t, a, b, target.Addr))

	// A window of datagrams in flight: loopback never has to drop one,
	// so a missing answer is a loss, and fails the test.
	const total, window = 10000, 32
	answered := make([]bool, total)
	next, got := 0, 0
	send := func() {
		if _, err := c.Write(checked(uint32(next), next*13%1200)); err != nil {
			t.Fatal(err)
		}
		next++
	}
	for next < window {
		send()
	}
	buf := make([]byte, 2048)
	for got < total {
		_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
		n, err := c.Read(buf)
		if err != nil {
			t.Fatalf("after %d answers of %d: %v (a datagram was lost)", got, total, err)
		}
		seq, ok := verify(buf[:n])
		if !ok || int(seq) >= next || answered[seq] {
			t.Fatalf("answer %d: bad checksum (%v), or number %d not asked or answered twice", got, !ok, seq)
		}
		answered[seq] = true
		got++
		if next < total {
			send()
		}
	}
	if good.Load() != total || bad.Load() != 0 {
		t.Fatalf("target got %d good and %d bad datagrams, want %d good", good.Load(), bad.Load(), total)
	}
	// One flow carried them all, bytes counted as frames.
	s := streamList(t, a)
	if len(s) != 1 || s[0].BytesOut < total*12 || s[0].BytesIn < total*12 {
		t.Fatalf("a's streams = %+v; want one flow that carried every datagram", s)
	}
}

// setIdle sets timeouts.udp_flow_idle in home's config.toml.
func setIdle(t *testing.T, home, idle string) {
	t.Helper()
	path := filepath.Join(home, "config.toml")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	s := strings.Replace(string(b), `udp_flow_idle = "1m0s"`, `udp_flow_idle = "`+idle+`"`, 1)
	if s == string(b) {
		t.Fatal("no udp_flow_idle in the default config file")
	}
	if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestUDPConfigTablesReloadAndIdleFlows(t *testing.T) {
	target := testnet.ServeUDP(t, func(q []byte) []byte { return q })
	aHome, aID := initHome(t)
	bHome, _ := initHome(t)
	setIdle(t, aHome, "300ms")
	setIdle(t, bHome, "300ms")
	appendConfig(t, bHome, fmt.Sprintf("\n[[listen]]\nname = \"dns\"\nprotocol = \"/x/dns\"\ntarget = %q\nallow = [%q]\n", target.Addr, aID))
	b := startIn(t, bHome, "daemon")
	appendConfig(t, aHome, strings.ReplaceAll(forwardTable("dns", "/ip4/127.0.0.1/udp/0", b.Addresses[0]), "/x/echo", "/x/dns"))
	a := startIn(t, aHome, "daemon")
	if out, errOut, code := a.CLI(t, "wait", "--timeout", "20s"); code != 0 {
		t.Fatalf("wait = %d %q %q", code, out, errOut)
	}
	aEvents, bEvents := a.Events(t), b.Events(t)

	c := udpClient(t, harness.UDPHostPort(t, listenAddr(t, a, "dns")))
	if got, err := ask(c, []byte("ping")); err != nil || string(got) != "ping" {
		t.Fatalf("through the config tunnel: %q, %v", got, err)
	}
	// With no datagram for udp_flow_idle, the flow ends on both sides,
	// cleanly.
	for _, side := range []struct {
		events <-chan harness.Event
		kind   string
	}{{aEvents, "forward"}, {bEvents, "listen"}} {
		ev := harness.NextEvent(t, side.events, 30*time.Second, side.kind+" flow ending", func(ev harness.Event) bool {
			return ev.Type == "stream_close" && ev.Kind == side.kind
		})
		if ev.Reason != "eof" {
			t.Errorf("%s flow ended with %+v, want a clean end (eof)", side.kind, ev)
		}
	}
	harness.Until(t, 30*time.Second, "no streams left", func() bool { return len(streamList(t, a)) == 0 && len(streamList(t, b)) == 0 })
	// The client's next datagram starts a new flow.
	if got, err := ask(c, []byte("again")); err != nil || string(got) != "again" {
		t.Fatalf("after the idle end: %q, %v", got, err)
	}

	// reload adds a UDP forward like any other.
	appendConfig(t, aHome, strings.ReplaceAll(forwardTable("dns2", "/ip4/127.0.0.1/udp/0", b.Addresses[0]), "/x/echo", "/x/dns"))
	if out, errOut, code := a.CLI(t, "reload"); code != 0 || !strings.Contains(out, "+ dns2") {
		t.Fatalf("reload = %d %q %q", code, out, errOut)
	}
	c2 := udpClient(t, harness.UDPHostPort(t, listenAddr(t, a, "dns2")))
	if got, err := ask(c2, []byte("two")); err != nil || string(got) != "two" {
		t.Fatalf("through the reloaded tunnel: %q, %v", got, err)
	}

	// A ticket forwards to a UDP listener through a /udp/ address too.
	tk, errOut, code := b.CLI(t, "share", "/x/dns")
	if code != 0 {
		t.Fatalf("share: %d %s", code, errOut)
	}
	out, errOut, code := a.CLI(t, "forward", strings.TrimSpace(tk), "/ip4/127.0.0.1/udp/0")
	if code != 0 {
		t.Fatalf("forward TICKET: %d %s", code, errOut)
	}
	if got, err := ask(udpClient(t, harness.UDPHostPort(t, out)), []byte("ticket")); err != nil || string(got) != "ticket" {
		t.Fatalf("through the ticket's forward: %q, %v", got, err)
	}
}

func TestUDPTargetDown(t *testing.T) {
	a, b := startDaemon(t, "--metrics", ":0"), startDaemon(t, "--metrics", ":0")
	down := fmt.Sprintf("/ip4/127.0.0.1/udp/%d", testnet.FreeUDPPort(t))
	c := udpClient(t, udpForward(t, a, b, down))
	events, bEvents := a.Events(t), b.Events(t)
	if _, err := c.Write([]byte("anyone?")); err != nil {
		t.Fatal(err)
	}
	// b's socket to the target gets the ICMP port unreachable, ends the
	// flow and resets the stream with the target_dial code, which a
	// records.
	ev := harness.NextEvent(t, events, 30*time.Second, "the flow ending", func(ev harness.Event) bool {
		return ev.Type == "stream_close" || ev.Type == "stream_failed"
	})
	if ev.Reason != "target_dial" {
		t.Fatalf("a's flow ended with %+v, want reason target_dial", ev)
	}
	fams := scrapeURL(t, a.Metrics)
	if v, ok := sample(fams, "p2ptun_stream_errors_total", "cause", "target_dial"); !ok || v != 1 {
		t.Errorf("p2ptun_stream_errors_total{cause=target_dial} = %v, want 1", v)
	}
	// b records the same cause, with the socket's error.
	ev = harness.NextEvent(t, bEvents, 30*time.Second, "b's flow ending", func(ev harness.Event) bool {
		return ev.Type == "stream_close" || ev.Type == "stream_failed"
	})
	if ev.Reason != "target_dial" || !strings.Contains(ev.Error, "connection refused") {
		t.Fatalf("b's flow ended with %+v, want reason target_dial and the socket's error", ev)
	}
	if v, ok := sample(scrapeURL(t, b.Metrics), "p2ptun_stream_errors_total", "cause", "target_dial"); !ok || v != 1 {
		t.Errorf("b: p2ptun_stream_errors_total{cause=target_dial} = %v, want 1", v)
	}
	if v, ok := sample(fams, "p2ptun_udp_datagrams_dropped_total", "reason", "too_large"); !ok || v != 0 {
		t.Errorf("p2ptun_udp_datagrams_dropped_total{reason=too_large} = %v, %v; want 0, present", v, ok)
	}
	harness.Until(t, 30*time.Second, "b's flow gone", func() bool { return len(streamList(t, b)) == 0 })
}

func TestUDPUnauthorizedPeerReachesNothing(t *testing.T) {
	a, b := startDaemon(t), startDaemon(t)
	target := testnet.ServeUDP(t, func(q []byte) []byte { return q })
	if _, errOut, code := b.CLI(t, "listen", "/x/dns", target.Addr, "--allow", harness.NewPeerID(t)); code != 0 {
		t.Fatal(errOut)
	}
	out, errOut, code := a.CLI(t, "forward", "/x/dns", "/ip4/127.0.0.1/udp/0", b.Addresses[0])
	if code != 0 {
		t.Fatal(errOut)
	}
	c := udpClient(t, harness.UDPHostPort(t, out))
	aEvents, bEvents := a.Events(t), b.Events(t)
	if _, err := c.Write([]byte("let me in")); err != nil {
		t.Fatal(err)
	}
	harness.NextEvent(t, bEvents, 30*time.Second, "b refusing a", func(ev harness.Event) bool {
		return ev.Type == "stream_failed" && ev.Reason == "denied" && ev.Peer == a.ID
	})
	harness.NextEvent(t, aEvents, 30*time.Second, "a's flow refused", func(ev harness.Event) bool {
		return (ev.Type == "stream_close" || ev.Type == "stream_failed") && ev.Reason == "denied"
	})
	// b refuses before it dials: nothing reached the target.
	if n := target.Received.Load(); n != 0 {
		t.Fatalf("the target received %d datagrams from a refused peer", n)
	}
}

func TestUDPBadInput(t *testing.T) {
	d := startDaemon(t)
	peer := harness.NewPeerID(t)
	for _, tt := range []struct {
		name string
		args []string
		want string
	}{
		{"report peer id", []string{"listen", "/x/dns", "/ip4/127.0.0.1/udp/53", "--allow", peer, "--report-peer-id"}, "drop --report-peer-id"},
		{"quic target", []string{"listen", "/x/dns", "/ip4/127.0.0.1/udp/53/quic-v1", "--allow", peer}, "/ip4/HOST/tcp/PORT"},
		{"quic listen address", []string{"forward", "/x/dns", "/ip4/127.0.0.1/udp/0/quic-v1", "/p2p/" + peer}, "must be an IP and a TCP or UDP port"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, errOut, code := d.CLI(t, tt.args...)
			if code != ExitUsage || strings.Count(errOut, "\n") != 1 || !strings.Contains(errOut, tt.want) {
				t.Fatalf("%v = %d %q; want exit 2, one line with %q", tt.args, code, errOut, tt.want)
			}
		})
	}
	if out, _, _ := d.CLI(t, "ls"); strings.Contains(out, "/x/dns") {
		t.Fatalf("ls after bad input = %q, want nothing registered", out)
	}
}

// TestUDPFlowsArePeerRateLimited: each flow is a stream, so the
// listener's limits.named_peer_stream_rate and burst apply to the peer its
// --allow names when it opens flows fast. Beyond the burst, flows are refused as rate_limited on both
// sides, counted in the metrics, and nothing of theirs reaches the target.
func TestUDPFlowsArePeerRateLimited(t *testing.T) {
	const burst, extra = 3, 3
	home := harness.TempHome(t)
	// One new flow per 100 s after the burst: none within the test.
	harness.WriteConfig(t, home, fmt.Sprintf("[limits]\nnamed_peer_stream_rate = 0.01\nnamed_peer_stream_burst = %d\n", burst))
	a, b := startDaemon(t, "--metrics", ":0"), startIn(t, home, "daemon", "--metrics", ":0")
	target := testnet.ServeUDP(t, func(q []byte) []byte { return q })
	addr := udpForward(t, a, b, target.Addr)
	for i := range burst {
		if got, err := ask(udpClient(t, addr), []byte("in")); err != nil || string(got) != "in" {
			t.Fatalf("flow %d of the burst: %q %v", i, got, err)
		}
	}
	for range extra {
		if _, err := udpClient(t, addr).Write([]byte("over")); err != nil {
			t.Fatal(err)
		}
	}
	for _, d := range []*harness.Daemon{a, b} {
		d.Until(t, 30*time.Second, "the flows over the burst refused as rate_limited", func() bool {
			v, _ := sample(scrapeURL(t, d.Metrics), "p2ptun_stream_errors_total", "cause", "rate_limited")
			return v == extra
		})
	}
	if n := target.Received.Load(); n != burst {
		t.Fatalf("the target received %d datagrams, want the %d of the flows let in", n, burst)
	}
}
