package p2pnet

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/peerstore"
	"github.com/libp2p/go-libp2p/core/protocol"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/p2ptun/p2ptun/peerdial"
	"github.com/p2ptun/p2ptun/refusal"
	"github.com/p2ptun/p2ptun/spec"
)

// Dial opens a stream for proto to a peer and returns it as a *Conn. The
// peer is a peer ID, a [peers] name of Dir's config, /p2p/ID, or a
// multiaddr ending in /p2p/ID whose address Dial uses. It connects first
// if needed (bounded by timeouts.dial) and makes sure the peer serves
// proto (timeouts.stream_open). Errors: ErrInvalid (bad peer or
// protocol), ErrUnreachable, ErrDenied (the peer's access policy refuses
// this node), ErrNoListener (it serves no listener for proto). A listener
// that refuses this node (its allowlist, its rate) resets the stream
// after it is open: the Conn's first Read returns ErrDenied or
// ErrRateLimited. It starts the Server if needed.
func (s *Server) Dial(ctx context.Context, peerAddr, proto string) (net.Conn, error) {
	pid, err := spec.ParseProtocol(proto, true)
	if err != nil {
		return nil, fmt.Errorf("p2pnet: %w", err)
	}
	h, err := s.started(ctx)
	if err != nil {
		return nil, err
	}
	id, err := s.learn(peerAddr)
	if err != nil {
		return nil, err
	}
	t := s.cfg.Timeouts
	st, err := peerdial.OpenStream(ctx, h, id, pid, t.Dial.Std(), t.StreamOpen.Std())
	if err != nil {
		return nil, fmt.Errorf("p2pnet: %w", err)
	}
	if err := peerdial.Negotiate(st, t.StreamOpen.Std()); err != nil {
		return nil, fmt.Errorf("p2pnet: %w", err)
	}
	return newConn(st), nil
}

// Connect makes sure the Server has a connection to a peer (written as
// for Dial), bounded by timeouts.dial. Errors: ErrInvalid,
// ErrUnreachable, ErrDenied. It starts the Server if needed.
func (s *Server) Connect(ctx context.Context, peerAddr string) error {
	h, err := s.started(ctx)
	if err != nil {
		return err
	}
	id, err := s.learn(peerAddr)
	if err != nil {
		return err
	}
	if err := peerdial.Connect(ctx, h, id, s.cfg.Timeouts.Dial.Std()); err != nil {
		return fmt.Errorf("p2pnet: %w", err)
	}
	return nil
}

// learn parses a peer address and remembers its addresses.
func (s *Server) learn(peerAddr string) (peer.ID, error) {
	pi, err := s.names.PeerAddr(peerAddr)
	if err != nil {
		return "", fmt.Errorf("p2pnet: %w", err)
	}
	h := s.host.Host()
	if pi.ID == h.ID() {
		return "", fmt.Errorf("p2pnet: %w: %s is this node's own peer ID", spec.ErrInvalid, pi.ID)
	}
	h.Peerstore().AddAddrs(pi.ID, pi.Addrs, peerstore.AddressTTL)
	return pi.ID, nil
}

// Conn is one libp2p stream as a net.Conn: the bytes of a daemon's
// forward or listen tunnel, with no framing. Its errors are the stream's,
// except that a reset with a p2ptun refusal code is that refusal
// (errors.Is ErrDenied, ErrRateLimited, ErrNoListener).
type Conn struct {
	s             network.Stream
	local, remote Addr
}

var _ net.Conn = (*Conn)(nil)

func newConn(s network.Stream) *Conn {
	c := s.Conn()
	return &Conn{
		s:      s,
		local:  Addr{Peer: c.LocalPeer(), Multiaddr: c.LocalMultiaddr(), Protocol: s.Protocol()},
		remote: Addr{Peer: c.RemotePeer(), Multiaddr: c.RemoteMultiaddr(), Protocol: s.Protocol()},
	}
}

// Read reads from the stream; io.EOF when the peer closed its side.
func (c *Conn) Read(b []byte) (int, error) {
	n, err := c.s.Read(b)
	return n, refused(err)
}

// Write writes to the stream.
func (c *Conn) Write(b []byte) (int, error) {
	n, err := c.s.Write(b)
	return n, refused(err)
}

// refused turns a reset with a refusal code into that refusal.
func refused(err error) error {
	if err == nil || errors.Is(err, io.EOF) {
		return err
	}
	if r := refusal.Of(err); r != nil {
		return r
	}
	return err
}

// Close closes both directions cleanly: the peer reads io.EOF.
func (c *Conn) Close() error { return c.s.Close() }

// CloseWrite closes the writing side (the peer reads io.EOF) and leaves
// the reading side open.
func (c *Conn) CloseWrite() error { return c.s.CloseWrite() }

// CloseRead closes the reading side.
func (c *Conn) CloseRead() error { return c.s.CloseRead() }

// Reset aborts the stream both ways: the peer reads an error, not io.EOF.
func (c *Conn) Reset() error { return c.s.Reset() }

// LocalAddr returns this node's peer ID and address on the connection.
func (c *Conn) LocalAddr() net.Addr { return c.local }

// RemoteAddr returns the peer's ID and address on the connection.
func (c *Conn) RemoteAddr() net.Addr { return c.remote }

// PeerID returns the peer at the other end.
func (c *Conn) PeerID() peer.ID { return c.remote.Peer }

// SetDeadline sets the read and write deadlines.
func (c *Conn) SetDeadline(t time.Time) error { return c.s.SetDeadline(t) }

// SetReadDeadline sets the read deadline.
func (c *Conn) SetReadDeadline(t time.Time) error { return c.s.SetReadDeadline(t) }

// SetWriteDeadline sets the write deadline.
func (c *Conn) SetWriteDeadline(t time.Time) error { return c.s.SetWriteDeadline(t) }

// PeerOf returns the peer at the other end of c, a connection from a
// Server's Listen or Dial; false for any other net.Conn.
func PeerOf(c net.Conn) (peer.ID, bool) {
	pc, ok := c.(*Conn)
	if !ok {
		return "", false
	}
	return pc.PeerID(), true
}

// Addr is a libp2p address as a net.Addr: a peer, its transport address
// when known, and the protocol of the stream.
type Addr struct {
	Peer      peer.ID
	Multiaddr ma.Multiaddr // nil for a Listener's address
	Protocol  protocol.ID
}

// Network returns "libp2p".
func (Addr) Network() string { return "libp2p" }

// String returns the address as a p2ptun PEER-ADDR: the multiaddr ending
// in /p2p/ID, or /p2p/ID alone.
func (a Addr) String() string {
	if len(a.Multiaddr) == 0 {
		return "/p2p/" + a.Peer.String()
	}
	return a.Multiaddr.String() + "/p2p/" + a.Peer.String()
}
