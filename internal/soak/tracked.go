package soak

import (
	"errors"
	"net"
	"sync"
)

// tracked serves a listener with one goroutine per connection; Close stops
// accepting, closes the connections in progress and waits for them. Echo
// and Server are built on it.
type tracked struct {
	ln net.Listener

	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	closed bool
	wg     sync.WaitGroup
}

// serve starts accepting on ln, which it takes ownership of, and runs
// handle for each connection, closing it when handle returns. An accept
// error other than the listener's close goes to acceptErr, if set.
func (t *tracked) serve(ln net.Listener, handle func(net.Conn), acceptErr func(error)) {
	t.ln, t.conns = ln, map[net.Conn]struct{}{}
	t.wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				if acceptErr != nil && !errors.Is(err, net.ErrClosed) {
					acceptErr(err)
				}
				return
			}
			t.mu.Lock()
			if t.closed {
				t.mu.Unlock()
				c.Close()
				return
			}
			t.conns[c] = struct{}{}
			t.wg.Go(func() {
				defer t.done(c)
				handle(c)
			})
			t.mu.Unlock()
		}
	})
}

func (t *tracked) done(c net.Conn) {
	t.mu.Lock()
	delete(t.conns, c)
	t.mu.Unlock()
	c.Close()
}

// Addr is where the server listens.
func (t *tracked) Addr() net.Addr { return t.ln.Addr() }

// Close stops accepting, closes the connections in progress and waits
// for their goroutines.
func (t *tracked) Close() error {
	t.mu.Lock()
	t.closed = true
	err := t.ln.Close()
	for c := range t.conns {
		c.Close()
	}
	t.mu.Unlock()
	t.wg.Wait()
	return err
}
