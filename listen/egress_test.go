package listen

import (
	"context"
	"io"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	socks5 "github.com/armon/go-socks5"
	"github.com/libp2p/go-libp2p/core/network"

	"github.com/p2ptun/p2ptun/internal/harness"
	"github.com/p2ptun/p2ptun/internal/testnet"
	"github.com/p2ptun/p2ptun/socks"
)

// rules parses permit rules or fails the test.
func rules(t *testing.T, ss ...string) socks.Rules {
	t.Helper()
	rs, err := socks.ParseRules(ss)
	if err != nil {
		t.Fatal(err)
	}
	return rs
}

// request sends a SOCKS5 CONNECT request for host (a name or an IP) and
// port on s and returns the egress's reply code.
func request(t *testing.T, s network.Stream, host string, port int) byte {
	t.Helper()
	d := &socks5.AddrSpec{FQDN: host, Port: port}
	if ip := net.ParseIP(host); ip != nil {
		d = &socks5.AddrSpec{IP: ip, Port: port}
	}
	if err := socks.WriteRequest(s, &socks.Request{Command: socks5.ConnectCommand, DestAddr: d}); err != nil {
		t.Fatal(err)
	}
	code, _, err := socks.ReadReply(s)
	if err != nil {
		t.Fatalf("reading the reply: %v", err)
	}
	return code
}

// fixedLookup resolves every name to the addresses of its turn: the
// first lookup gets answers[0], the next answers[1], … (the last one
// after that).
type fixedLookup struct {
	mu      sync.Mutex
	answers [][]netip.Addr
	n       int
}

func (f *fixedLookup) lookup(context.Context, string) ([]netip.Addr, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	a := f.answers[min(f.n, len(f.answers)-1)]
	f.n++
	return a, nil
}

func (f *fixedLookup) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.n
}

// TestEgressBridgesWithHalfClose: a permitted request by name is dialled
// at the address the name resolved to, recorded with its destination,
// and bridged with half-close: the reply comes after the client's EOF.
func TestEgressBridgesWithHalfClose(t *testing.T) {
	target := replyAfterEOF(t)
	_, portStr, _ := net.SplitHostPort(target)
	port, _ := strconv.Atoi(portStr)
	lk := &fixedLookup{answers: [][]netip.Addr{{netip.MustParseAddr("127.0.0.1")}}}
	tn := startListener(t, Config{AllowAll: true, Egress: rules(t, "svc.test:"+portStr), Lookup: lk.lookup})
	s := tn.open(t)
	if code := request(t, s, "svc.test", port); code != socks.Succeeded {
		t.Fatalf("reply %d (%s), want success", code, socks.Meaning(code))
	}
	harness.Until(t, 10*time.Second, "the stream recorded with its destination", func() bool {
		l := tn.streams.List()
		return len(l) == 1 && l[0].Destination == "svc.test:"+portStr && l[0].TargetAddress == harness.TCPMultiaddr(t, target).String()
	})
	tn.halfCloses(t, s)
}

// TestEgressRefusals: each refusal is a SOCKS reply with its code, a
// clean end of the stream, and the cause in the registry's failure; a
// destination no rule permits is never dialled.
func TestEgressRefusals(t *testing.T) {
	closed := testnet.FreePort(t)
	open := testnet.Serve(t, testnet.Echo)
	_, openPort, _ := net.SplitHostPort(open)
	op, _ := strconv.Atoi(openPort)
	for _, tc := range []struct {
		name  string
		host  string
		port  int
		code  byte
		dials int32
	}{
		{"not permitted", "127.0.0.1", op, socks.NotAllowed, 0},
		{"not permitted by name", "other.test", op, socks.NotAllowed, 0},
		{"does not resolve", "nothing.invalid", 80, socks.HostUnreachable, 0},
		{"refused", "127.0.0.1", closed, socks.ConnectionRefused, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var dials atomic.Int32
			lookup := func(context.Context, string) ([]netip.Addr, error) { return nil, syscall.ENOENT }
			tn := startListener(t, Config{
				AllowAll: true, Dial: countingDial(&dials), Lookup: lookup,
				Egress: rules(t, "127.0.0.1:"+strconv.Itoa(closed), "*.invalid:*"),
			})
			s := tn.open(t)
			if code := request(t, s, tc.host, tc.port); code != tc.code {
				t.Fatalf("reply %d (%s), want %d", code, socks.Meaning(code), tc.code)
			}
			if rest, err := io.ReadAll(s); err != nil || len(rest) != 0 {
				t.Fatalf("after the reply: %q, %v; want a clean end", rest, err)
			}
			f := tn.nextFailure(t)
			if f.Cause != socks.Cause(tc.code) || f.Peer != tn.client.ID().String() {
				t.Fatalf("failure %+v, want cause %s", f, socks.Cause(tc.code))
			}
			if n := dials.Load(); n != tc.dials {
				t.Fatalf("%d dials, want %d", n, tc.dials)
			}
		})
	}
	t.Run("not a SOCKS request", func(t *testing.T) {
		tn := startListener(t, Config{AllowAll: true, Egress: rules(t, "127.0.0.1:1")})
		s := tn.open(t)
		io.WriteString(s, "GET / HTTP/1.0\r\n\r\n")
		if _, err := io.ReadAll(s); err == nil {
			t.Fatal("the stream ended cleanly; want a reset")
		}
		if f := tn.nextFailure(t); f.Cause != socks.CauseHandshake {
			t.Fatalf("failure %+v, want %s", f, socks.CauseHandshake)
		}
	})
	t.Run("not CONNECT", func(t *testing.T) {
		var dials atomic.Int32
		tn := startListener(t, Config{AllowAll: true, Egress: rules(t, "127.0.0.1:80"), Dial: countingDial(&dials)})
		s := tn.open(t)
		s.Write([]byte{5, socks5.BindCommand, 0, 1, 127, 0, 0, 1, 0, 80})
		code, _, err := socks.ReadReply(s)
		if err != nil || code != socks.CommandNotSupported {
			t.Fatalf("reply %d, %v; want %d", code, err, socks.CommandNotSupported)
		}
		if f := tn.nextFailure(t); f.Cause != socks.Cause(socks.CommandNotSupported) || dials.Load() != 0 {
			t.Fatalf("failure %+v after %d dials, want %s and none", f, dials.Load(), socks.Cause(socks.CommandNotSupported))
		}
	})
}

// TestEgressDialsWhatItChecked: a name is resolved once, and the address
// checked against the rules is the one dialled, even if the name would
// resolve elsewhere the second time (DNS rebinding).
func TestEgressDialsWhatItChecked(t *testing.T) {
	lk := &fixedLookup{answers: [][]netip.Addr{
		{netip.MustParseAddr("10.1.2.3")},  // checked: inside 10.0.0.0/8
		{netip.MustParseAddr("127.0.0.1")}, // what a second lookup would say
	}}
	var mu sync.Mutex
	var dialled []string
	dial := func(_ context.Context, _, addr string) (net.Conn, error) {
		mu.Lock()
		dialled = append(dialled, addr)
		mu.Unlock()
		return nil, &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}
	}
	tn := startListener(t, Config{AllowAll: true, Egress: rules(t, "10.0.0.0/8:22"), Lookup: lk.lookup, Dial: dial})
	if code := request(t, tn.open(t), "rebind.test", 22); code != socks.ConnectionRefused {
		t.Fatalf("reply %d, want %d from the stub dial", code, socks.ConnectionRefused)
	}
	tn.nextFailure(t)
	mu.Lock()
	defer mu.Unlock()
	if lk.count() != 1 || len(dialled) != 1 || dialled[0] != "10.1.2.3:22" {
		t.Fatalf("%d lookups, dialled %v; want one lookup and 10.1.2.3:22", lk.count(), dialled)
	}
}
