package soak

import (
	"context"
	"fmt"
	"io"
	"net"
	"sync"
	"time"
)

// Server is the target end of the checked exchange. A client announces
// each connection with Expect before dialing; the server matches the
// header it reads to that Spec, verifies the upload byte by byte, sends
// the download, and reports the upload's SHA-256 (or what was wrong)
// through the Ticket.
type Server struct {
	tracked
	idle time.Duration

	mu       sync.Mutex
	expect   map[uint64]*Ticket
	failures []error // failures not tied to an expected connection
}

// Ticket is one expected connection.
type Ticket struct {
	s       *Server
	spec    Spec
	claimed bool          // a connection with this seed arrived; under s.mu
	done    chan struct{} // closed once sum and err are set
	sum     [sumLen]byte
	err     error
}

// NewServer serves the exchange on ln until Close. Reads and writes that
// make no progress for idle (DefaultIdle if 0) fail. NewServer takes
// ownership of ln.
func NewServer(ln net.Listener, idle time.Duration) *Server {
	if idle <= 0 {
		idle = DefaultIdle
	}
	s := &Server{idle: idle, expect: map[uint64]*Ticket{}}
	s.serve(ln, s.handle, func(err error) { s.fail(fmt.Errorf("accept: %w", err)) })
	return s
}

func (s *Server) fail(err error) {
	s.mu.Lock()
	s.failures = append(s.failures, err)
	s.mu.Unlock()
}

func (s *Server) handle(c net.Conn) {
	cc, stop := watch(context.Background(), c, s.idle)
	defer stop()
	h := make([]byte, headerLen)
	if _, err := io.ReadFull(cc, h); err != nil {
		s.fail(fmt.Errorf("server: connection from %s: reading the header: %w", c.RemoteAddr(), err))
		return
	}
	sp, err := parseHeader(h)
	if err != nil {
		s.fail(fmt.Errorf("server: connection from %s: %w", c.RemoteAddr(), err))
		return
	}
	s.mu.Lock()
	tk := s.expect[sp.Seed]
	switch {
	case tk == nil:
		err = fmt.Errorf("server: %s arrived but was not expected", sp)
	case tk.claimed:
		err = fmt.Errorf("server: %s arrived twice", sp)
	case tk.spec != sp:
		err = fmt.Errorf("server: header says %s, want %s", sp, tk.spec)
	default:
		tk.claimed = true
	}
	s.mu.Unlock()
	if err != nil {
		s.fail(err)
		return
	}
	tk.sum, tk.err = serve(cc, sp)
	if tk.err != nil {
		tk.err = fmt.Errorf("server: %s: %w", sp, tk.err)
	}
	close(tk.done)
}

// Expect announces a connection; the client then dials and runs Exchange,
// and Wait gives the server's verdict. Release the ticket when done. A
// seed may be expected once at a time.
func (s *Server) Expect(sp Spec) *Ticket {
	tk := &Ticket{s: s, spec: sp, done: make(chan struct{})}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, dup := s.expect[sp.Seed]; dup {
		panic(fmt.Sprintf("soak: seed %#x expected twice", sp.Seed))
	}
	s.expect[sp.Seed] = tk
	return tk
}

// Wait blocks until the server has checked the upload and returns its
// SHA-256, or the server's error. It fails if ctx ends first.
func (t *Ticket) Wait(ctx context.Context) ([sumLen]byte, error) {
	select {
	case <-t.done:
		return t.sum, t.err
	case <-ctx.Done():
		if !t.Claimed() {
			return [sumLen]byte{}, fmt.Errorf("server: %s never arrived: %w", t.spec, ctx.Err())
		}
		return [sumLen]byte{}, fmt.Errorf("server: %s has not finished: %w", t.spec, ctx.Err())
	}
}

// Claimed reports whether the server has read this connection's header.
func (t *Ticket) Claimed() bool {
	t.s.mu.Lock()
	defer t.s.mu.Unlock()
	return t.claimed
}

// Release forgets the ticket; a connection with its seed that arrives
// later is a failure.
func (t *Ticket) Release() {
	t.s.mu.Lock()
	delete(t.s.expect, t.spec.Seed)
	t.s.mu.Unlock()
}

// Failures returns what went wrong on connections that no ticket
// accounts for: headers that were missing, malformed, unexpected or
// repeated.
func (s *Server) Failures() []error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]error(nil), s.failures...)
}
