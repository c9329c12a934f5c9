package forward

import (
	"context"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/p2ptun/p2ptun/peerdial"
	"github.com/p2ptun/p2ptun/streams"
)

// openStream opens a stream to the peer. With one peer and no connection
// to it, the client's dial opens a *peerdial.Cold stream on the
// connection it makes, without waiting for identify: link runs its
// handshake (handshake) before the stream is used.
func (f *Forward) openStream(ctx context.Context) (network.Stream, error) {
	if f.cfg.AllowLimited {
		ctx = network.WithAllowLimitedConn(ctx, "p2ptun forward --allow-limited")
	}
	if f.set != nil {
		return f.set.Open(ctx, f.openNegotiated)
	}
	c, err := f.redial.DialCold(ctx, f.h, f.cfg.Peer, f.cfg.DialTimeout, f.cfg.RedialMin, f.cfg.RedialMax)
	if err != nil {
		return nil, err
	}
	if c != nil {
		s, err := peerdial.NewCold(ctx, c, f.cfg.Protocol, f.cfg.StreamOpenTimeout)
		if err != nil {
			f.redial.Settle(err, f.cfg.RedialMin, f.cfg.RedialMax)
			return nil, err
		}
		return s, nil
	}
	return f.openStreamTo(ctx, f.cfg.Peer, &f.redial)
}

// openStreamTo connects to p through its redial gate g, then opens a
// stream.
func (f *Forward) openStreamTo(ctx context.Context, p peer.ID, g *peerdial.Gate) (network.Stream, error) {
	if err := f.connect(ctx, p, g); err != nil {
		return nil, err
	}
	return peerdial.NewStream(ctx, f.h, p, f.cfg.Protocol, f.cfg.StreamOpenTimeout)
}

// connect makes sure there is a connection to p, through its redial gate
// g: one dial at a time, whose outcome the clients arriving meanwhile
// share, and none during the backoff after a failed one.
func (f *Forward) connect(ctx context.Context, p peer.ID, g *peerdial.Gate) error {
	return g.Connect(ctx, f.h, p, f.cfg.DialTimeout, f.cfg.RedialMin, f.cfg.RedialMax)
}

// handshake waits for the peer's answer to s, a Cold stream, bounded by
// the stream open timeout and ctx, and settles the redial gate's dial with
// it. Meanwhile the client's first bytes, if local is a connection that
// can be interrupted (a TCP client) and no exchange has to come first
// (early), go to the peer with the protocol's header, so that they do not
// wait a round trip for its answer; sent counts them. Nothing from the
// peer reaches local before the answer. It returns once the first bytes'
// goroutine has: the bridge then reads local from where it stopped.
func (f *Forward) handshake(ctx context.Context, s *peerdial.Cold, local streams.HalfCloser, early bool) (sent int64, err error) {
	c, ok := local.(interface{ SetReadDeadline(time.Time) error })
	if !early || !ok {
		err := s.Handshake(ctx, f.cfg.StreamOpenTimeout)
		f.redial.Settle(err, f.cfg.RedialMin, f.cfg.RedialMax)
		return 0, err
	}
	done := make(chan int64, 1)
	go firstBytes(s, local, done)
	err = s.Handshake(ctx, f.cfg.StreamOpenTimeout)
	f.redial.Settle(err, f.cfg.RedialMin, f.cfg.RedialMax)
	_ = c.SetReadDeadline(time.Now()) // ends the first read, if it still waits
	sent = <-done
	_ = c.SetReadDeadline(time.Time{})
	return sent, err
}

// firstBytes copies what local's first read returns to s, and sends how
// many bytes it wrote on done. A read cut short by a deadline copies
// nothing; an end or error of local is left for the bridge to read again,
// and an error writing to s for the handshake or the bridge to see.
func firstBytes(s network.Stream, local streams.HalfCloser, done chan<- int64) {
	var sent int
	defer func() { done <- int64(sent) }()
	buf := make([]byte, 16<<10)
	if n, _ := local.Read(buf); n > 0 {
		sent, _ = s.Write(buf[:n])
	}
}
