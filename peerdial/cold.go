package peerdial

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	basichost "github.com/libp2p/go-libp2p/p2p/host/basic"
	"github.com/libp2p/go-libp2p/p2p/net/swarm"
	msmux "github.com/multiformats/go-multistream"

	"github.com/p2ptun/p2ptun/oneline"
	"github.com/p2ptun/p2ptun/refusal"
)

// Cold is a stream opened on a connection just dialed, before identify has
// told which protocols the peer serves: libp2p's host would wait a round
// trip for identify, then open the stream lazily. Cold opens it lazily at
// once: the multistream header goes with the first bytes written, and the
// peer's answer is read before the first bytes read (Handshake runs it
// now). Identify still runs; later streams on the connection take the
// host's path. Its Read, Write, Close and CloseWrite are those of
// go-libp2p's host's lazy stream (basichost's streamWrapper).
type Cold struct {
	network.Stream
	rw msmux.LazyConn
}

var _ network.Stream = (*Cold)(nil)

func (s *Cold) Read(b []byte) (int, error) { return s.rw.Read(b) }

func (s *Cold) Write(b []byte) (int, error) { return s.rw.Write(b) }

// Close finishes the handshake, bounded by libp2p's negotiation timeout,
// and closes the stream.
func (s *Cold) Close() error {
	_ = s.Stream.SetReadDeadline(time.Now().Add(basichost.DefaultNegotiationTimeout))
	return s.rw.Close()
}

// CloseWrite sends the handshake if nothing was written yet, then closes
// the write half. A failed handshake shows at the next read.
func (s *Cold) CloseWrite() error {
	_ = s.rw.Flush()
	return s.Stream.CloseWrite()
}

// Handshake sends the protocol's header (unless a write did) and waits,
// bounded by timeout and ctx, for the peer's answer. On error s is reset, and the
// error is what OpenStream would have returned for the same peer: it wraps
// ErrNoListener for a peer that does not serve the protocol, is the
// refusal of a peer whose access policy refuses this node (which closes
// the connection), or wraps ErrUnreachable. A stream the peer's listener
// refused (a reset with one of p2ptun's codes) is not the handshake's
// failure: as on a stream libp2p's host opens lazily, the first read
// returns that refusal. A Handshake that fails with a connection the peer
// closed counts as a failed dial for a Gate (Gate.Settle).
func (s *Cold) Handshake(ctx context.Context, timeout time.Duration) error {
	stop := context.AfterFunc(ctx, func() { _ = s.Stream.Reset() })
	_ = s.Stream.SetReadDeadline(time.Now().Add(timeout))
	_, err := s.rw.Read(nil)
	stop()
	_ = s.Stream.SetReadDeadline(time.Time{})
	if r := refusal.Of(err); err == nil || r != nil && !r.Conn {
		return nil // a refusal by the listener: the first read says it
	}
	_ = s.Reset()
	return failedHandshake(s.Conn(), s.Protocol(), err)
}

// failedHandshake names why a cold stream on c failed with err: as
// NewStream does, or, for a failure of the connection itself, as Connect
// does.
func failedHandshake(c network.Conn, proto protocol.ID, err error) error {
	p := c.RemotePeer()
	var ns msmux.ErrNotSupported[protocol.ID]
	switch r := refusal.Of(err); {
	case r != nil && r.Conn:
		return denied(c.LocalPeer(), p, r)
	case r == nil && !errors.As(err, &ns) && c.IsClosed():
		// The peer closed the connection before it answered: what a
		// Connect that waits for identify reports.
		return closedEarly(context.Background(), c.LocalPeer(), p, []network.Conn{c})
	}
	return streamFailed(p, proto, err)
}

// connFailed reports whether err, from Handshake, is the failure of the
// connection itself (a refusal by the peer's access policy, or a
// connection closed as soon as it was made), which Connect would have
// returned.
func connFailed(err error) bool {
	r := refusal.Of(err)
	return r != nil && r.Conn || errors.Is(err, ErrUnreachable)
}

// DialCold dials p with the swarm, bounded by timeout, without waiting
// for identify, and returns the new connection, or nil when h has one to
// p already (or only a limited one, which NewStream handles). It clears
// libp2p's dial backoff first, as Connect does; errors wrap
// ErrUnreachable.
func DialCold(ctx context.Context, h host.Host, p peer.ID, timeout time.Duration) (network.Conn, error) {
	if h.Network().Connectedness(p) != network.NotConnected {
		return nil, nil
	}
	clearBackoff(h, p)
	dctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	c, err := h.Network().DialPeer(dctx, p)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %s", ErrUnreachable, p, oneline.Error(err))
	}
	if c.Stat().Limited {
		return nil, nil
	}
	return c, nil
}

// NewCold opens a Cold stream for proto on c, bounded by openTimeout.
// Errors are named as Handshake's are.
func NewCold(ctx context.Context, c network.Conn, proto protocol.ID, openTimeout time.Duration) (*Cold, error) {
	octx, cancel := context.WithTimeout(ctx, openTimeout)
	defer cancel()
	s, err := c.NewStream(octx)
	if err != nil {
		return nil, failedHandshake(c, proto, err)
	}
	if err := s.SetProtocol(proto); err != nil {
		_ = s.Reset()
		return nil, fmt.Errorf("opening %s stream to peer %s: %w", proto, c.RemotePeer(), err)
	}
	return &Cold{Stream: s, rw: msmux.NewMSSelect(s, proto)}, nil
}

// clearBackoff clears libp2p's dial backoff for p. The caller decides
// when to dial again (the forward's redial backoff, a tunnel's retries, a
// user's command). libp2p's own backoff, per address, 5s and growing to 5
// minutes with every failure, would go on refusing to dial a peer that is
// back.
func clearBackoff(h host.Host, p peer.ID) {
	if sw, ok := h.Network().(*swarm.Swarm); ok {
		sw.Backoff().Clear(p)
	}
}
