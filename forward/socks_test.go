package forward

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	socks5 "github.com/armon/go-socks5"
	"github.com/libp2p/go-libp2p/core/network"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/p2ptun/p2ptun/internal/harness"
	"github.com/p2ptun/p2ptun/refusal"
	"github.com/p2ptun/p2ptun/registry"
	"github.com/p2ptun/p2ptun/socks"
)

// fakeEgress serves proto on a fresh host as an egress would: it reads
// the request, refuses "deny.test" with NotAllowed, resets "reset.test"
// with the Denied code, and echoes anything else after a success reply. It counts streams and keeps the last
// destination it was asked for, as the forward sent it.
type fakeEgress struct {
	streams atomic.Int32
	dest    atomic.Value // string
}

// socksForward is a SOCKS forward to a fakeEgress.
type socksForward struct {
	egress  *fakeEgress
	addr    net.Addr // the forward's
	streams *registry.Streams
	failed  <-chan string // the causes of the Failed hook
	logs    fmt.Stringer
}

func startFakeEgress(t *testing.T) socksForward {
	t.Helper()
	e := &fakeEgress{}
	h := newHost(t, newKey(t), "/ip4/127.0.0.1/tcp/0")
	h.SetStreamHandler(proto, func(s network.Stream) {
		e.streams.Add(1)
		req, err := socks.ReadRequest(s)
		if err != nil {
			_ = s.Reset()
			return
		}
		host, _ := socks.Address(req)
		if req.DestAddr.IP == nil {
			e.dest.Store(host) // a name, as the client gave it
		}
		if host == "reset.test" {
			// As a listener whose allowlist refuses this node does.
			_ = refusal.Reset(s, refusal.Denied)
			return
		}
		if host == "deny.test" {
			_ = socks.WriteReply(s, socks.NotAllowed, netip.AddrPort{})
			_ = s.Close()
			return
		}
		_ = socks.WriteReply(s, socks.Succeeded, netip.MustParseAddrPort("127.0.0.1:4242"))
		_, _ = io.Copy(s, s)
		_ = s.Close()
	})
	f, logs := startForward(t, h.ID(), h.Addrs()[0], Config{Socks: true})
	failed := make(chan string, 8)
	f.cfg.Streams.SetHooks(registry.Hooks{Failed: func(x registry.Failure) { failed <- x.Cause }})
	port, _ := f.Addr().ValueForProtocol(ma.P_TCP)
	addr, _ := net.ResolveTCPAddr("tcp", "127.0.0.1:"+port)
	return socksForward{egress: e, addr: addr, streams: f.cfg.Streams, failed: failed, logs: logs}
}

// socksDial connects to the SOCKS forward at addr, offers methods, and,
// if it is accepted, asks for host:port; it returns the connection and
// the reply code.
func socksDial(t *testing.T, addr net.Addr, host string, port int) (*net.TCPConn, byte) {
	t.Helper()
	c, err := net.DialTCP("tcp", nil, addr.(*net.TCPAddr))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	c.Write([]byte{5, 1, 0})
	var method [2]byte
	if _, err := io.ReadFull(c, method[:]); err != nil || method != [2]byte{5, 0} {
		t.Fatalf("greeting answered %v, %v; want no authentication", method, err)
	}
	if err := socks.WriteRequest(c, &socks.Request{DestAddr: &socks5.AddrSpec{FQDN: host, Port: port}}); err != nil {
		t.Fatal(err)
	}
	code, _, err := socks.ReadReply(c)
	if err != nil {
		t.Fatalf("reading the reply: %v", err)
	}
	return c, code
}

// TestSocksForwardSendsTheNameAndBridges: the client's name reaches the
// peer unresolved, the stream is recorded with it, and bytes flow with
// half-close once the peer has said yes.
func TestSocksForwardSendsTheNameAndBridges(t *testing.T) {
	sf := startFakeEgress(t)
	streams := sf.streams
	c, code := socksDial(t, sf.addr, "db.internal", 5432)
	if code != socks.Succeeded {
		t.Fatalf("reply %d, want success", code)
	}
	if got := sf.egress.dest.Load(); got != "db.internal" {
		t.Fatalf("the peer was asked for %v, want the name unresolved", got)
	}
	harness.Until(t, 10*time.Second, "the stream recorded with its destination", func() bool {
		l := streams.List()
		return len(l) == 1 && l[0].Destination == "db.internal:5432"
	})
	io.WriteString(c, "hello")
	if err := c.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(c)
	if err != nil || string(got) != "hello" {
		t.Fatalf("echo = %q, %v; want hello and a clean EOF", got, err)
	}
	if err := streams.WaitIdle(t.Context()); err != nil {
		t.Fatal(err)
	}
}

// TestSocksForwardRelaysRefusal: the peer's refusal reaches the client as
// its reply code, then a clean close; the failure has its cause and the
// log line the destination and reason.
func TestSocksForwardRelaysRefusal(t *testing.T) {
	sf := startFakeEgress(t)
	c, code := socksDial(t, sf.addr, "deny.test", 22)
	if code != socks.NotAllowed {
		t.Fatalf("reply %d, want %d", code, socks.NotAllowed)
	}
	if rest, err := io.ReadAll(c); err != nil || len(rest) != 0 {
		t.Fatalf("after the reply: %q, %v; want a clean close", rest, err)
	}
	if c := nextCause(t, sf.failed); c != "socks_not_allowed" {
		t.Fatalf("failure cause %s, want socks_not_allowed", c)
	}
	// The failure is reported after the line is logged.
	if logs := sf.logs.String(); !strings.Contains(logs, "dest=deny.test:22") || !strings.Contains(logs, "cause=socks_not_allowed") {
		t.Fatalf("the forward's log lacks the refusal's destination and cause:\n%s", logs)
	}
}

// TestSocksForwardRefusesAuthOnly: a client that offers no method without
// authentication is told so, and no stream is opened for it.
func TestSocksForwardRefusesAuthOnly(t *testing.T) {
	sf := startFakeEgress(t)
	c, err := net.DialTCP("tcp", nil, sf.addr.(*net.TCPAddr))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	c.Write([]byte{5, 1, 2}) // username/password only
	got, _ := io.ReadAll(c)
	if !bytes.Equal(got, []byte{5, 0xff}) {
		t.Fatalf("answered %v, want no acceptable method", got)
	}
	if c := nextCause(t, sf.failed); c != socks.CauseHandshake {
		t.Fatalf("failure cause %s, want %s", c, socks.CauseHandshake)
	}
	if n := sf.egress.streams.Load(); n != 0 {
		t.Fatalf("%d streams opened for a client that never made a request", n)
	}
}

// TestSocksForwardMapsAResetToAReply: a peer that resets the stream with
// a refusal (its allowlist, not its permit rules) is reported to the
// client as "not allowed", and the failure carries the refusal's cause.
func TestSocksForwardMapsAResetToAReply(t *testing.T) {
	sf := startFakeEgress(t)
	c, code := socksDial(t, sf.addr, "reset.test", 22)
	if code != socks.NotAllowed {
		t.Fatalf("reply %d, want %d", code, socks.NotAllowed)
	}
	if rest, err := io.ReadAll(c); err != nil || len(rest) != 0 {
		t.Fatalf("after the reply: %q, %v; want a clean close", rest, err)
	}
	if c := nextCause(t, sf.failed); c != string(refusal.Denied) {
		t.Fatalf("failure cause %s, want %s", c, refusal.Denied)
	}
}
