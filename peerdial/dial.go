package peerdial

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	"github.com/libp2p/go-libp2p/p2p/net/swarm"
	msmux "github.com/multiformats/go-multistream"

	"github.com/p2ptun/p2ptun/oneline"
	"github.com/p2ptun/p2ptun/refusal"
)

// Gate is one peer's dial gate, for a caller that dials it again and
// again (a forward): one dial at a time, whose outcome the callers
// arriving meanwhile share, and none during the backoff after a failed
// one (see Gate.Connect). The zero value is ready to use.
type Gate struct {
	mu      sync.Mutex
	dialing *dialCall     // the dial in flight, if any
	next    time.Time     // after a failed dial, no other before this
	wait    time.Duration // the current backoff
	last    error         // why the last dial failed
}

// dialCall is one dial of the peer; done closes once err is set.
type dialCall struct {
	done chan struct{}
	err  error
}

// BackoffError is what Gate.Connect returns during the backoff after a
// failed dial, without dialing; a forward resets the client that arrives
// then.
type BackoffError struct {
	last error         // the failed dial's error
	left time.Duration // until the next dial is allowed
}

func (e *BackoffError) Error() string {
	return fmt.Sprintf("not redialing for %v after a failed dial: %v", e.left.Round(time.Millisecond), e.last)
}

// Unwrap returns the failed dial's error, so that errors.Is finds
// ErrUnreachable.
func (e *BackoffError) Unwrap() error { return e.last }

// Errors returned by OpenStream, to be checked with errors.Is.
var (
	// ErrUnreachable means no connection to the peer could be made.
	ErrUnreachable = errors.New("peer unreachable")
	// ErrNoListener means the peer is reachable but serves no handler for
	// the protocol, or its listener is closing.
	ErrNoListener = refusal.ErrNoListener
)

// Connect makes sure h has a connection to p, through g: one dial at a
// time (Connect, bounded by timeout), whose outcome the callers arriving
// meanwhile share, and none during the backoff after a failed one, which
// starts at redialMin and doubles with each failed dial up to redialMax;
// a successful dial ends it. During the backoff it returns a
// *BackoffError at once.
func (g *Gate) Connect(ctx context.Context, h host.Host, p peer.ID, timeout, redialMin, redialMax time.Duration) error {
	_, err := g.dial(ctx, h, p, redialMin, redialMax, func() (network.Conn, error) {
		return nil, Connect(ctx, h, p, timeout)
	})
	return err
}

// DialCold is Connect for a caller that opens a Cold stream on the
// connection it makes: it dials with DialCold, and returns the new
// connection to the caller whose dial made it (nil to the others, and
// when h has a connection already). Whether the dial worked is known only
// once that stream's Handshake returns: the caller passes its error to
// Settle, which ends the backoff or counts a failed dial.
func (g *Gate) DialCold(ctx context.Context, h host.Host, p peer.ID, timeout, redialMin, redialMax time.Duration) (network.Conn, error) {
	return g.dial(ctx, h, p, redialMin, redialMax, func() (network.Conn, error) {
		return DialCold(ctx, h, p, timeout)
	})
}

// Settle records the outcome of the Handshake of the first stream on a
// connection DialCold made: an error that is the connection's (the peer's
// access policy refused this node, or it closed the connection at once)
// counts as a failed dial, as Connect would have returned it; any other
// outcome ends the backoff.
func (g *Gate) Settle(err error, redialMin, redialMax time.Duration) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if !connFailed(err) {
		g.wait, g.next, g.last = 0, time.Time{}, nil
		return
	}
	g.fail(err, redialMin, redialMax)
}

// fail starts the backoff after a dial that failed with err; g.mu is held.
func (g *Gate) fail(err error, redialMin, redialMax time.Duration) {
	g.wait = min(max(2*g.wait, redialMin), redialMax)
	g.next, g.last = time.Now().Add(g.wait), err
}

// dial runs dial through g (see Connect). A dial that returns a
// connection has not settled yet: it leaves the backoff's length for
// Settle.
func (g *Gate) dial(ctx context.Context, h host.Host, p peer.ID, redialMin, redialMax time.Duration, dial func() (network.Conn, error)) (network.Conn, error) {
	switch h.Network().Connectedness(p) {
	case network.Connected, network.Limited:
		return nil, nil
	}
	g.mu.Lock()
	if call := g.dialing; call != nil {
		g.mu.Unlock()
		select {
		case <-call.done:
			return nil, call.err
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	if left := time.Until(g.next); left > 0 {
		err := &BackoffError{last: g.last, left: left}
		g.mu.Unlock()
		return nil, err
	}
	call := &dialCall{done: make(chan struct{})}
	g.dialing = call
	g.mu.Unlock()

	c, err := dial()
	call.err = err

	g.mu.Lock()
	g.dialing = nil
	switch {
	case err == nil && c != nil: // Settle decides
		g.next, g.last = time.Time{}, nil
	case err == nil:
		g.wait, g.next, g.last = 0, time.Time{}, nil
	case ctx.Err() == nil: // not cut short by Close: the peer failed
		g.fail(err, redialMin, redialMax)
	}
	g.mu.Unlock()
	close(call.done)
	return c, err
}

// OpenStream connects to p if needed (bounded by dialTimeout) and opens a
// stream for proto (bounded by openTimeout). Errors wrap ErrUnreachable or
// ErrNoListener when they apply, and always name the peer and protocol.
func OpenStream(ctx context.Context, h host.Host, p peer.ID, proto protocol.ID, dialTimeout, openTimeout time.Duration) (network.Stream, error) {
	if err := Connect(ctx, h, p, dialTimeout); err != nil {
		return nil, err
	}
	return NewStream(ctx, h, p, proto, openTimeout)
}

// NewStream opens a stream for proto on an existing connection to p.
func NewStream(ctx context.Context, h host.Host, p peer.ID, proto protocol.ID, openTimeout time.Duration) (network.Stream, error) {
	// With only a limited (capped relay) connection, NewStream would wait
	// for a direct one until it times out; say why at once instead.
	if h.Network().Connectedness(p) == network.Limited {
		if ok, _ := network.GetAllowLimitedConn(ctx); !ok {
			return nil, fmt.Errorf("%w: %s is reachable only through a relay that limits relayed connections (time or data); pass --allow-limited to use it anyway", ErrUnreachable, p)
		}
	}
	octx, cancel := context.WithTimeout(ctx, openTimeout)
	defer cancel()
	s, err := h.NewStream(network.WithNoDial(octx, "already connected"), p, proto)
	if err != nil {
		if errors.Is(err, network.ErrLimitedConn) {
			return nil, fmt.Errorf("%w: %s is reachable only through a relay that limits relayed connections (time or data); pass --allow-limited to use it anyway", ErrUnreachable, p)
		}
		return nil, streamFailed(p, proto, err)
	}
	return s, nil
}

// streamFailed names why a stream for proto to p failed with err: the
// peer does not serve proto (ErrNoListener), refused the stream (its
// *refusal.Error), or reset it without a code.
func streamFailed(p peer.ID, proto protocol.ID, err error) error {
	var ns msmux.ErrNotSupported[protocol.ID]
	if errors.As(err, &ns) {
		return fmt.Errorf("%s: %w %s", p, ErrNoListener, proto)
	}
	if r := refusal.Of(err); r != nil {
		return fmt.Errorf("opening %s stream to peer %s: %w", proto, p, r)
	}
	var se *network.StreamError
	if errors.As(err, &se) && se.Remote {
		// The peer took the protocol, then reset the stream without
		// one of p2ptun's codes: kubo, or an older p2ptun.
		return fmt.Errorf("opening %s stream to peer %s: the peer reset it (is this node's peer ID on its listener's --allow list? does its target accept connections? is this node over its stream rate?)", proto, p)
	}
	return fmt.Errorf("opening %s stream to peer %s: %s", proto, p, oneline.Error(err))
}

// Negotiate makes sure the peer took s's protocol before s is used. To a
// peer whose protocols identify has reported, libp2p opens a stream
// "lazily": the protocol is agreed on with the first bytes written, so a
// peer whose listener closed a moment ago would take the first bytes and
// only then refuse. A read of no bytes, bounded by timeout, runs that
// handshake now and returns its outcome. A stream the swarm returns itself
// was negotiated already (and a read of no bytes would wait for data on
// it). On error s is reset, and the error wraps ErrNoListener when the
// peer does not serve the protocol, or is the *refusal.Error of a
// listener that refused the stream at once.
func Negotiate(s network.Stream, timeout time.Duration) error {
	if _, negotiated := s.(*swarm.Stream); negotiated {
		return nil
	}
	_ = s.SetReadDeadline(time.Now().Add(timeout))
	_, err := s.Read(nil)
	_ = s.SetReadDeadline(time.Time{})
	if err == nil {
		return nil
	}
	_ = s.Reset()
	p, proto := s.Conn().RemotePeer(), s.Protocol()
	var ns msmux.ErrNotSupported[protocol.ID]
	if errors.As(err, &ns) {
		return fmt.Errorf("%s: %w %s", p, ErrNoListener, proto)
	}
	if r := refusal.Of(err); r != nil { // its listener refused at once
		return fmt.Errorf("opening %s stream to peer %s: %w", proto, p, r)
	}
	return fmt.Errorf("opening %s stream to peer %s: %s", proto, p, oneline.Error(err))
}

// Connect makes sure h has a connection to p, dialing with the addresses in
// its peerstore, bounded by timeout, now: it clears libp2p's dial backoff
// for p first. Errors wrap ErrUnreachable, or are a *refusal.Error (which
// unwraps to refusal.ErrDenied) when the peer's access policy refuses this
// node.
func Connect(ctx context.Context, h host.Host, p peer.ID, timeout time.Duration) error {
	switch h.Network().Connectedness(p) {
	case network.Connected, network.Limited:
		return nil
	}
	clearBackoff(h, p)
	dctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	// A peer whose access policy refuses this node lets the handshake
	// finish, then closes the connection with a code (see package
	// access): Connect may succeed all the same. Keep the connections it
	// makes, to read that code.
	var mu sync.Mutex
	var made []network.Conn
	watch := &network.NotifyBundle{ConnectedF: func(_ network.Network, c network.Conn) {
		if c.RemotePeer() == p {
			mu.Lock()
			made = append(made, c)
			mu.Unlock()
		}
	}}
	h.Network().Notify(watch)
	err := h.Connect(dctx, peer.AddrInfo{ID: p})
	h.Network().StopNotify(watch)
	if err != nil {
		return fmt.Errorf("%w: %s: %s", ErrUnreachable, p, oneline.Error(err))
	}
	// Connect waited for identify, which a refusing peer never answers:
	// its connection is closed by now (the swarm may not have dropped it
	// yet, so ask the connection, not Connectedness).
	mu.Lock()
	defer mu.Unlock()
	open := len(made) == 0 && h.Network().Connectedness(p) != network.NotConnected // a connection made by another dial
	for _, c := range made {
		open = open || !c.IsClosed()
	}
	if open {
		return nil
	}
	return closedEarly(dctx, h.ID(), p, made)
}

// closedEarly names why the connections made to p, all closed as soon as
// they were made, closed: a refusal by p's access policy, read from the
// code they closed with (on a closed connection NewStream fails with it),
// or, without one, refusal.ClosedEarly; ErrUnreachable when none was made.
func closedEarly(ctx context.Context, self, p peer.ID, made []network.Conn) error {
	var closed error
	for _, c := range made {
		s, err := c.NewStream(ctx)
		if err == nil {
			_ = s.Reset()
			continue
		}
		if r := refusal.Of(err); r != nil {
			return denied(self, p, r)
		}
		closed = err
	}
	if closed == nil {
		return fmt.Errorf("%w: %s: the connection closed as soon as it was made", ErrUnreachable, p)
	}
	return denied(self, p, refusal.ClosedEarly(closed))
}

// denied is the error of peer p, whose access policy refuses self (r).
func denied(self, p peer.ID, r *refusal.Error) error {
	return fmt.Errorf("peer %s: %w (ask its operator to run `p2ptun access allow %s`)", p, r, self)
}
