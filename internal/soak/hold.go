package soak

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"
)

// Echo is a TCP server that writes back what it reads; when the client
// half-closes, it half-closes too.
type Echo struct {
	tracked
	idle time.Duration
}

// NewEcho serves on ln until Close, which it takes ownership of. A read or
// write that makes no progress for idle (DefaultIdle if 0) ends the
// connection.
func NewEcho(ln net.Listener, idle time.Duration) *Echo {
	if idle <= 0 {
		idle = DefaultIdle
	}
	e := &Echo{idle: idle}
	e.serve(ln, e.echo, nil)
	return e
}

func (e *Echo) echo(c net.Conn) {
	cc, stop := watch(context.Background(), c, e.idle)
	defer stop()
	buf := make([]byte, 8<<10)
	if _, err := io.CopyBuffer(cc, cc, buf); err == nil {
		_ = cc.closeWrite()
	}
}

// Held is a set of connections to an Echo that are all open at once.
type Held struct {
	conns []net.Conn
	idle  time.Duration
}

func greeting(i int) []byte { return fmt.Appendf(nil, "hold %d\n", i) }

// OpenAll dials n connections concurrently and checks that each one
// echoes a greeting naming it, so that all n are established end to end
// before it returns; they stay open. If any fails, OpenAll closes the
// others and says how many failed and why.
func OpenAll(ctx context.Context, n int, dial func(context.Context) (net.Conn, error), idle time.Duration) (*Held, error) {
	h := &Held{conns: make([]net.Conn, n), idle: idle}
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			c, err := dial(ctx)
			if err != nil {
				errs[i] = fmt.Errorf("held conn %d: dial: %w", i, err)
				return
			}
			h.conns[i] = c
			cc, stop := watch(ctx, c, idle)
			defer stop()
			g := greeting(i)
			if _, err := cc.Write(g); err != nil {
				errs[i] = fmt.Errorf("held conn %d: sending the greeting: %w", i, err)
				return
			}
			got := make([]byte, len(g))
			if n, err := io.ReadFull(cc, got); err != nil {
				errs[i] = fmt.Errorf("held conn %d: greeting %q echoed as %q, then: %w", i, g, got[:n], err)
				return
			}
			if string(got) != string(g) {
				errs[i] = fmt.Errorf("held conn %d: greeting %q echoed as %q", i, g, got)
			}
		})
	}
	wg.Wait()
	if err := firstErrors(errs); err != nil {
		h.Close()
		return nil, err
	}
	return h, nil
}

// Len is how many connections are held.
func (h *Held) Len() int { return len(h.conns) }

// EchoAll sends size bytes on every held connection at once while
// reading and verifying their echo, half-closes each after its bytes,
// checks that the echo ends there too, and closes them all. It returns
// the bytes verified.
func (h *Held) EchoAll(ctx context.Context, size int64) (int64, error) {
	errs := make([]error, len(h.conns))
	var wg sync.WaitGroup
	for i, c := range h.conns {
		wg.Go(func() {
			defer c.Close()
			cc, stop := watch(ctx, c, h.idle)
			defer stop()
			seed := uint64(i)
			rerr, serr := both(cc, func(cc *conn) error {
				v := newVerifier("echo", content(seed, dirEcho), size)
				if err := recv(cc, v); err != nil {
					return err
				}
				return expectEOF(cc, "echo")
			}, func(cc *conn) error {
				if _, err := send(cc, content(seed, dirEcho), size); err != nil {
					return fmt.Errorf("sending %w", err)
				}
				return cc.closeWrite()
			})
			if err := errors.Join(rerr, serr); err != nil {
				errs[i] = fmt.Errorf("held conn %d: %w", i, err)
			}
		})
	}
	wg.Wait()
	h.conns = nil
	if err := firstErrors(errs); err != nil {
		return 0, err
	}
	return size * int64(len(errs)), nil
}

// Close closes every held connection.
func (h *Held) Close() {
	for _, c := range h.conns {
		if c != nil {
			c.Close()
		}
	}
	h.conns = nil
}

// firstErrors summarises errs (indexed by connection): how many failed
// and the first few, in index order.
func firstErrors(errs []error) error {
	var (
		n     int
		first []error
	)
	for _, err := range errs {
		if err == nil {
			continue
		}
		n++
		if len(first) < 5 {
			first = append(first, err)
		}
	}
	if n == 0 {
		return nil
	}
	return fmt.Errorf("%d of %d connections failed; the first %d:\n%w", n, len(errs), len(first), errors.Join(first...))
}
