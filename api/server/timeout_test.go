package server

import (
	"errors"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/p2ptun/p2ptun/api"
	"github.com/p2ptun/p2ptun/internal/testnet"
	"github.com/p2ptun/p2ptun/spec"
)

// TestClientTimeout: every kind of call to a daemon that accepts and never
// answers ends with ErrNoAnswer, in one line that names the timeout and the
// socket.
func TestClientTimeout(t *testing.T) {
	path := testnet.SocketPath(t)
	testnet.Silent(t, path)
	ctx := testContext(t)
	c := api.NewClient(path)
	c.Timeout = 200 * time.Millisecond
	for _, tc := range []struct {
		name string
		call func() error
	}{
		{"ID", func() error { _, err := c.ID(ctx); return err }},
		{"Listen", func() error {
			_, err := c.Listen(ctx, api.ListenRequest{Protocol: "/x/a", Target: "127.0.0.1:1", AllowAll: true})
			return err
		}},
		{"Status", func() error { _, err := c.Status(ctx); return err }},
		{"Events", func() error { return c.Events(ctx, nil, func(api.Event) error { return nil }) }},
		{"Pipe", func() error {
			p, err := c.Pipe(ctx, api.PipeRequest{Peer: randomPeer(t).String(), Protocol: "/x/a"})
			if err == nil {
				p.Close()
			}
			return err
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.call()
			if !errors.Is(err, api.ErrNoAnswer) {
				t.Fatalf("err = %v, want ErrNoAnswer", err)
			}
			if msg := err.Error(); strings.Contains(msg, "\n") || !strings.Contains(msg, "within 200ms") || !strings.Contains(msg, path) {
				t.Errorf("message %q: want one line naming the timeout and %s", msg, path)
			}
			if ctx.Err() != nil {
				t.Fatalf("the test's own deadline ended the call: %v", ctx.Err())
			}
		})
	}
}

// manualTimers stands in for time.AfterFunc in a Client, so that a test
// decides when a request's time runs out.
type manualTimers struct {
	mu     sync.Mutex
	timers []*manualTimer
}

type manualTimer struct {
	f       func()
	stopped bool
}

func (m *manualTimers) afterFunc(_ time.Duration, f func()) func() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	mt := &manualTimer{f: f}
	m.timers = append(m.timers, mt)
	return func() bool {
		m.mu.Lock()
		defer m.mu.Unlock()
		was := !mt.stopped
		mt.stopped = true
		return was
	}
}

// expire runs out the time of every request whose timer is not stopped.
func (m *manualTimers) expire() {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, mt := range m.timers {
		if !mt.stopped {
			mt.stopped = true
			mt.f()
		}
	}
}

// TestClientTimeoutSparesStreams: the timeout bounds the request, not what
// Events and Pipe stream once the daemon has answered.
func TestClientTimeoutSparesStreams(t *testing.T) {
	t.Run("Events", func(t *testing.T) {
		n := newNode(t)
		p := testnet.SocketPath(t)
		startServer(t, n, p)
		c := api.NewClient(p)
		var timers manualTimers
		c.AfterFunc = timers.afterFunc
		ctx := testContext(t)
		errUp := errors.New("tunnel up seen")
		ev := mustListen(t, spec.Request{Protocol: "/x/ev", Target: "127.0.0.1:1", AllowAll: true})
		err := c.Events(ctx, func() {
			timers.expire() // the subscription's time runs out
			if _, err := n.Listen(ctx, ev); err != nil {
				t.Error(err)
			}
		}, func(ev api.Event) error {
			if ev.Type == api.EventTunnelUp {
				return errUp
			}
			return nil
		})
		if !errors.Is(err, errUp) {
			t.Fatalf("Events = %v, want the tunnel_up after the timeout", err)
		}
	})

	t.Run("Pipe", func(t *testing.T) {
		_, _, c, remote := pipeSetup(t)
		var timers manualTimers
		c.AfterFunc = timers.afterFunc
		p, err := c.Pipe(testContext(t), api.PipeRequest{Peer: remote, Protocol: "/x/echo"})
		if err != nil {
			t.Fatal(err)
		}
		defer p.Close()
		timers.expire()
		if _, err := p.Write([]byte("hello")); err != nil {
			t.Fatal(err)
		}
		got := make([]byte, 5)
		if _, err := io.ReadFull(p, got); err != nil || string(got) != "hello" {
			t.Fatalf("read back %q, %v after the timeout", got, err)
		}
		if err := p.CloseWrite(); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadAll(p); err != nil {
			t.Fatal(err)
		}
		if err := p.Wait(); err != nil {
			t.Fatalf("Wait = %v", err)
		}
	})

	t.Run("expired while waiting", func(t *testing.T) {
		// The same timers do end a request the daemon has not answered.
		path := testnet.SocketPath(t)
		testnet.Silent(t, path)
		c := api.NewClient(path)
		var timers manualTimers
		started := make(chan struct{})
		c.AfterFunc = func(d time.Duration, f func()) func() bool {
			defer close(started)
			return timers.afterFunc(d, f)
		}
		done := make(chan error, 1)
		go func() { _, err := c.Listeners(testContext(t)); done <- err }()
		<-started
		timers.expire()
		if err := <-done; !errors.Is(err, api.ErrNoAnswer) {
			t.Fatalf("Listeners = %v, want ErrNoAnswer", err)
		}
	})
}
