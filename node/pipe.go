package node

import (
	"context"
	"fmt"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/p2ptun/p2ptun/peerdial"
	"github.com/p2ptun/p2ptun/refusal"
	"github.com/p2ptun/p2ptun/registry"
	"github.com/p2ptun/p2ptun/spec"
	"github.com/p2ptun/p2ptun/streams"
	seam "github.com/p2ptun/p2ptun/tunnel"
)

// Pipe is a stream that OpenPipe opened and that is waiting for its local
// end. Exactly one of Run or Abort must be called.
type Pipe struct {
	n     *Node
	s     network.Stream
	peer  peer.ID
	proto string
	start time.Time // when OpenPipe began, for the stream's setup time
}

// OpenPipe connects to the peer of ps, a spec.KindPipe spec, with the
// configured dial timeout and opens a stream for its protocol with the
// configured stream-open timeout. Errors wrap ErrUsage, ErrDenied,
// ErrUnreachable, ErrNoListener or ErrClosed when they apply. Nothing is
// registered until Run.
func (n *Node) OpenPipe(ctx context.Context, ps spec.Spec) (*Pipe, error) {
	start := time.Now()
	if n.isClosed() {
		return nil, ErrClosed
	}
	if ps.Kind != spec.KindPipe {
		return nil, fmt.Errorf("%w: OpenPipe given a %q spec", ErrUsage, ps.Kind)
	}
	proto, pi := ps.Protocol, ps.Peer
	if err := n.preparePeer(pi, "pipe to another peer"); err != nil {
		return nil, err
	}
	if err := n.connect(ctx, pi, false); err != nil {
		return nil, err
	}
	if ps.AllowLimited {
		ctx = network.WithAllowLimitedConn(ctx, "p2ptun pipe --allow-limited")
	}
	s, err := peerdial.OpenStream(ctx, n.host, pi.ID, proto, n.opts.Timeouts.Dial.Std(), n.opts.Timeouts.StreamOpen.Std())
	if err != nil {
		return nil, err
	}
	return &Pipe{n: n, s: s, peer: pi.ID, proto: string(proto), start: start}, nil
}

// Run records the pipe in the stream registry (Kind "pipe", so that
// `stream ls` shows it and `stream close` ends it) and bridges the stream
// with local until both directions end, ctx is cancelled or the stream is
// closed through the registry. It takes ownership of local and of the
// stream, and returns the streams.Pipe's error: nil only for a clean end in
// both directions. origin names the local end in listings.
//
// A pipe is a tunnel of one connection, handed over by the API rather
// than accepted: it has no seam.Kind, and its Opener has nothing left to
// open.
func (p *Pipe) Run(ctx context.Context, local streams.HalfCloser, origin string) error {
	who := p.peer.String()
	t, err := seam.New(seam.Config{
		Kind: registry.KindPipe, Protocol: p.proto, Streams: &p.n.streams,
		Logger: p.n.log.With("proto", p.proto, "peer", who),
	}, nil)
	if err == nil {
		err = t.Start()
	}
	if err != nil {
		p.Abort()
		_ = local.Close()
		return err
	}
	var bridgeErr error
	t.Serve(p.start, func(context.Context) (*seam.Link, error) {
		// Remote = the stream, Local = the caller's end: bytes from the
		// peer are "in".
		return &seam.Link{
			Remote: p.s, Local: local,
			Record: registry.Stream{
				OriginAddress: origin,
				TargetAddress: "/p2p/" + who,
				Peer:          who,
				Path:          streams.Path(p.s.Conn()),
			},
			Ended: func(err error) {
				bridgeErr = err
				if r := refusal.Of(err); r != nil {
					p.n.limited.Warn("refused "+string(r.Cause)+" pipe "+who, "pipe stream refused by the peer",
						"proto", p.proto, "peer", who, "cause", string(r.Cause), "err", r)
				}
			},
		}, nil
	})
	_ = t.Drain(ctx) // a cancelled ctx aborts the bridge: bridgeErr says so
	_ = t.Close()
	return bridgeErr
}

// Abort resets the stream of a pipe that will not be run.
func (p *Pipe) Abort() { _ = p.s.Reset() }
