package tunnel_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/p2ptun/p2ptun/internal/harness"
	"github.com/p2ptun/p2ptun/internal/testnet"
	"github.com/p2ptun/p2ptun/registry"
	"github.com/p2ptun/p2ptun/tunnel"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// events collects what the stream registry's hooks are told.
type events struct {
	opened chan registry.StreamInfo
	closed chan registry.StreamInfo
	failed chan registry.Failure
}

func newRegistry() (*registry.Streams, events) {
	ev := events{make(chan registry.StreamInfo, 8), make(chan registry.StreamInfo, 8), make(chan registry.Failure, 8)}
	reg := &registry.Streams{}
	reg.SetHooks(registry.Hooks{
		Opened: func(s registry.StreamInfo) { ev.opened <- s },
		Closed: func(s registry.StreamInfo, _ error) { ev.closed <- s },
		Failed: func(f registry.Failure) { ev.failed <- f },
	})
	return reg, ev
}

// start runs a portForward (example_test.go) to target, recorded under
// listener 7 of kind "test".
func start(t *testing.T, reg *registry.Streams, target string) (*tunnel.Tunnel, string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	tn, err := tunnel.New(tunnel.Config{Kind: "test", Protocol: "/x/t", Streams: reg, ListenerID: 7}, &portForward{ln: ln, target: target})
	if err != nil {
		t.Fatal(err)
	}
	if err := tn.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tn.Close() })
	return tn, ln.Addr().String()
}

func dial(t *testing.T, addr string) *net.TCPConn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c.(*net.TCPConn)
}

// A connection is recorded under the tunnel's kind, protocol and listener
// ID before bytes flow, bridged with half-close, and finished with its
// counts; Close waits for it and is idempotent.
func TestServeRecordsBridgesAndFinishes(t *testing.T) {
	reg, ev := newRegistry()
	tn, addr := start(t, reg, testnet.Serve(t, testnet.Echo))
	c := dial(t, addr)
	harness.Echoes(t, c, "hello")
	s := <-ev.opened
	if s.ListenerID != 7 || s.Kind != "test" || s.Protocol != "/x/t" || s.OriginAddress != c.LocalAddr().String() {
		t.Errorf("opened = %+v; want listener 7, kind test, /x/t, origin %s", s, c.LocalAddr())
	}
	if got := reg.List(); len(got) != 1 || got[0].ID != s.ID {
		t.Errorf("registry = %+v; want the one stream", got)
	}
	if err := c.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	if rest, err := io.ReadAll(c); err != nil || len(rest) != 0 {
		t.Fatalf("after half-close: %q, %v; want a clean end", rest, err)
	}
	if s := <-ev.closed; s.BytesIn != 5 || s.BytesOut != 5 {
		t.Errorf("closed = %+v; want 5 bytes each way", s)
	}
	if err := tn.Close(); err != nil {
		t.Fatal(err)
	}
	if err := tn.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if err := tn.Start(); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Start after Close = %v; want net.ErrClosed", err)
	}
	if got := reg.List(); len(got) != 0 {
		t.Errorf("registry after Close = %+v; want none", got)
	}
}

// An Opener's *Failure reaches the Failed hook with the tunnel's
// identity; nothing is recorded.
func TestOpenFailureIsReported(t *testing.T) {
	reg, ev := newRegistry()
	_, addr := start(t, reg, fmt.Sprintf("127.0.0.1:%d", testnet.FreePort(t)))
	c := dial(t, addr)
	if _, err := io.ReadAll(c); err != nil && !harness.IsReset(err) {
		t.Fatalf("client read: %v; want the connection closed", err)
	}
	f := <-ev.failed
	if f.ListenerID != 7 || f.Kind != "test" || f.Protocol != "/x/t" || f.Cause != "target_dial" || f.Err == nil {
		t.Errorf("failure = %+v; want listener 7, kind test, /x/t, cause target_dial with the dial's error", f)
	}
	if got := reg.List(); len(got) != 0 {
		t.Errorf("registry = %+v; want none", got)
	}
}

// After StopAccepting the tunnel serves no new connection (Serve does not
// call the Opener) and the live one goes on until Close aborts it.
func TestStopAcceptingKeepsLiveConnections(t *testing.T) {
	reg, ev := newRegistry()
	tn, addr := start(t, reg, testnet.Serve(t, testnet.Echo))
	live := dial(t, addr)
	harness.Echoes(t, live, "one")
	<-ev.opened

	tn.StopAccepting()
	if tn.Serve(time.Now(), func(context.Context) (*tunnel.Link, error) {
		t.Error("Serve called the Opener after StopAccepting")
		return nil, errors.New("unreachable")
	}) {
		t.Error("Serve = true after StopAccepting; want false")
	}
	if c, err := net.Dial("tcp", addr); err == nil {
		c.Close()
		t.Error("a new client connected after StopAccepting; want refused")
	}
	harness.Echoes(t, live, "two")

	if err := tn.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadAll(live); !harness.IsReset(err) {
		t.Errorf("live client after Close: %v; want a reset", err)
	}
	<-ev.closed
}

// Drain waits for the live connections to end on their own; a cancelled
// ctx makes it abort them (and still wait).
func TestDrain(t *testing.T) {
	t.Run("connections end", func(t *testing.T) {
		reg, ev := newRegistry()
		tn, addr := start(t, reg, testnet.Serve(t, testnet.Echo))
		c := dial(t, addr)
		harness.Echoes(t, c, "x")
		<-ev.opened
		drained := make(chan error, 1)
		go func() { drained <- tn.Drain(context.Background()) }()
		if err := c.CloseWrite(); err != nil { // the echo ends its side too
			t.Fatal(err)
		}
		if err := <-drained; err != nil {
			t.Fatalf("Drain = %v; want nil", err)
		}
		if got := reg.List(); len(got) != 0 {
			t.Errorf("registry after Drain = %+v; want none", got)
		}
	})
	t.Run("ctx ends first", func(t *testing.T) {
		reg, ev := newRegistry()
		tn, addr := start(t, reg, testnet.Serve(t, testnet.Echo))
		c := dial(t, addr)
		harness.Echoes(t, c, "x")
		<-ev.opened
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if err := tn.Drain(ctx); !errors.Is(err, context.Canceled) {
			t.Fatalf("Drain = %v; want context.Canceled", err)
		}
		if _, err := io.ReadAll(c); !harness.IsReset(err) {
			t.Errorf("client after an aborted drain: %v; want a reset", err)
		}
	})
}

// steps wraps a kind and notes the order of Start's steps.
type steps struct {
	*portForward
	log *[]string
}

func (k steps) Bind() error { *k.log = append(*k.log, "bind"); return k.portForward.Bind() }
func (k steps) Accept(t *tunnel.Tunnel) error {
	*k.log = append(*k.log, "accept")
	return k.portForward.Accept(t)
}

// Start registers the tunnel after the kind binds and before it accepts,
// so that even a client waiting before Start is recorded under the
// registered ID; a failed registration leaves nothing accepting.
func TestStartRegistersBeforeAccepting(t *testing.T) {
	t.Run("registered", func(t *testing.T) {
		reg, ev := newRegistry()
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		c := dial(t, ln.Addr().String()) // waits in the backlog until the kind accepts
		var log []string
		tn, err := tunnel.New(tunnel.Config{Kind: "test", Protocol: "/x/t", Streams: reg, Register: func() (uint64, error) {
			log = append(log, "register")
			return 42, nil
		}}, steps{&portForward{ln: ln, target: testnet.Serve(t, testnet.Echo)}, &log})
		if err != nil {
			t.Fatal(err)
		}
		defer tn.Close()
		if err := tn.Start(); err != nil {
			t.Fatal(err)
		}
		if got := fmt.Sprint(log); got != "[bind register accept]" {
			t.Errorf("Start's steps = %s; want [bind register accept]", got)
		}
		harness.Echoes(t, c, "first")
		if s := <-ev.opened; s.ListenerID != 42 {
			t.Errorf("first client recorded under listener %d; want 42", s.ListenerID)
		}
	})
	t.Run("registration fails", func(t *testing.T) {
		reg, _ := newRegistry()
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		var log []string
		refused := errors.New("taken")
		tn, err := tunnel.New(tunnel.Config{Kind: "test", Streams: reg, Register: func() (uint64, error) { return 0, refused }},
			steps{&portForward{ln: ln, target: "127.0.0.1:1"}, &log})
		if err != nil {
			t.Fatal(err)
		}
		if err := tn.Start(); !errors.Is(err, refused) {
			t.Fatalf("Start = %v; want the registration's error", err)
		}
		if got := fmt.Sprint(log); got != "[bind]" {
			t.Errorf("Start's steps = %s; want [bind]: nothing accepts", got)
		}
		if err := tn.Close(); err != nil {
			t.Fatal(err)
		}
		if c, err := net.Dial("tcp", ln.Addr().String()); err == nil {
			c.Close()
			t.Error("the kind still accepts after Close")
		}
	})
}
