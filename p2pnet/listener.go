package p2pnet

import (
	"context"
	"fmt"
	"net"
	"sync"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/protocol"

	"github.com/p2ptun/p2ptun/listen"
	"github.com/p2ptun/p2ptun/refusal"
	"github.com/p2ptun/p2ptun/spec"
)

// Listen serves proto (a libp2p protocol such as /x/echo) and returns its
// listener: each stream a peer opens for proto that the Server's access
// rules admit becomes a *Conn that Accept returns. A peer the rules refuse
// (not in Allow, unless AllowAll; over its stream rate) has its stream
// reset with the code a daemon's `p2ptun listen` sends, so a p2ptun peer
// reads why (ErrDenied, ErrRateLimited). It starts the Server if needed.
func (s *Server) Listen(proto string) (net.Listener, error) {
	pid, err := spec.ParseProtocol(proto, true)
	if err != nil {
		return nil, fmt.Errorf("p2pnet: %w", err)
	}
	h, err := s.started(context.Background())
	if err != nil {
		return nil, err
	}
	if !s.AllowAll && len(s.allow) == 0 {
		return nil, fmt.Errorf("p2pnet: listen %s: %w", pid, ErrNoAllowlist)
	}
	lim := s.cfg.Limits
	l := &Listener{
		s: s, h: h, proto: pid,
		admit: listen.NewAdmission(listen.Rules{
			Protocol: pid, Allow: s.allow, AllowAll: s.AllowAll,
			PeerRate: lim.PeerStreamRate, PeerBurst: lim.PeerStreamBurst,
			NamedPeerRate: lim.NamedPeerStreamRate, NamedPeerBurst: lim.NamedPeerStreamBurst,
			Limited: s.limited,
		}),
		conns: make(chan *Conn),
		done:  make(chan struct{}),
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.state == closed:
		return nil, net.ErrClosed
	case s.listeners[pid] != nil:
		return nil, fmt.Errorf("p2pnet: listen %s: %w", pid, ErrListening)
	}
	s.listeners[pid] = l
	h.SetStreamHandler(pid, l.handle)
	return l, nil
}

// Listener is a protocol served by a Server, a net.Listener whose
// connections are *Conn. Close stops it; the connections it accepted stay
// open, as with net.Listener.
type Listener struct {
	s     *Server
	h     host.Host
	proto protocol.ID
	admit *listen.Admission
	conns chan *Conn    // unbuffered: a stream waits in its handler for Accept
	done  chan struct{} // closed by Close

	mu       sync.Mutex
	closed   bool
	handlers sync.WaitGroup // handlers past the closed check
}

var _ net.Listener = (*Listener)(nil)

// handle runs on libp2p's goroutine for each stream: it admits the peer,
// then waits for Accept to take the stream or for Close, which resets it
// with the closing code.
func (l *Listener) handle(st network.Stream) {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		_ = refusal.Reset(st, refusal.Closing)
		return
	}
	l.handlers.Add(1)
	l.mu.Unlock()
	defer l.handlers.Done()
	if l.admit.Admit(st, st.Conn().RemotePeer().String()) != "" {
		return
	}
	select {
	case l.conns <- newConn(st):
	case <-l.done:
		_ = refusal.Reset(st, refusal.Closing)
	}
}

// Accept waits for the next admitted stream and returns it as a *Conn.
// After Close it returns net.ErrClosed.
func (l *Listener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

// Close stops serving the protocol: a stream that arrives or waits for
// Accept from now on is reset with the closing code (ErrNoListener to a
// p2ptun peer), and Accept returns net.ErrClosed. It waits for the
// listener's stream handlers to return. It is idempotent.
func (l *Listener) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	l.closed = true
	l.mu.Unlock()
	close(l.done)
	l.h.RemoveStreamHandler(l.proto)
	l.handlers.Wait()
	l.s.mu.Lock()
	if l.s.listeners[l.proto] == l {
		delete(l.s.listeners, l.proto)
	}
	l.s.mu.Unlock()
	return nil
}

// Addr returns the Server's address for the protocol: its peer ID, and
// the protocol in Addr.Protocol.
func (l *Listener) Addr() net.Addr { return Addr{Peer: l.h.ID(), Protocol: l.proto} }

// Allow adds a peer (ID or [peers] name) to this listener's allowlist,
// for the streams it opens from now on, at the rate for the peers the
// listener does not name.
func (l *Listener) Allow(p string) error {
	id, err := l.s.names.Peer(p)
	if err != nil {
		return fmt.Errorf("p2pnet: %w", err)
	}
	l.admit.Allow(id)
	return nil
}
