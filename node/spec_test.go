package node

import (
	"context"
	"errors"
	"testing"

	"github.com/p2ptun/p2ptun/registry"
	"github.com/p2ptun/p2ptun/spec"
)

// listenReq parses r as the API server does and asks n to listen: tests
// write requests as users do, and get the parse errors users get.
func (n *Node) listenReq(ctx context.Context, r spec.Request) (registry.Listener, error) {
	s, err := spec.ParseListen(r)
	if err != nil {
		return registry.Listener{}, err
	}
	return n.Listen(ctx, s)
}

// forwardReq parses r as the API server does and asks n to forward.
func (n *Node) forwardReq(ctx context.Context, r spec.Request) (registry.Listener, error) {
	s, err := spec.ParseForward(r)
	if err != nil {
		return registry.Listener{}, err
	}
	return n.Forward(ctx, s)
}

// pipeReq parses r as the API server does and asks n for a pipe.
func (n *Node) pipeReq(ctx context.Context, r spec.Request) (*Pipe, error) {
	s, err := spec.ParsePipe(r)
	if err != nil {
		return nil, err
	}
	return n.OpenPipe(ctx, s)
}

// A spec of another kind (or the zero Spec) is refused as ErrUsage, and
// registers nothing.
func TestSpecOfTheWrongKindIsRefused(t *testing.T) {
	n := newNode(t)
	ctx := context.Background()
	fwd, err := spec.ParseForward(spec.Request{Protocol: "/x/a", ListenAddress: "127.0.0.1:0", Peer: n.id()})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := n.Listen(ctx, fwd); !errors.Is(err, ErrUsage) {
		t.Errorf("Listen(forward spec) = %v, want ErrUsage", err)
	}
	if _, err := n.Forward(ctx, spec.Spec{}); !errors.Is(err, ErrUsage) {
		t.Errorf("Forward(zero spec) = %v, want ErrUsage", err)
	}
	if _, err := n.OpenPipe(ctx, fwd); !errors.Is(err, ErrUsage) {
		t.Errorf("OpenPipe(forward spec) = %v, want ErrUsage", err)
	}
	if ls := n.Listeners(); len(ls) != 0 {
		t.Errorf("listeners = %+v, want none", ls)
	}
}
