package node

import (
	"context"

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
