package node

import (
	"context"
	"errors"

	"github.com/p2ptun/p2ptun/config"
	"github.com/p2ptun/p2ptun/reconcile"
	"github.com/p2ptun/p2ptun/registry"
	"github.com/p2ptun/p2ptun/spec"
)

// TunnelStatus is the state of one config-file tunnel, and ApplyResult
// says what ApplyTunnels changed (package reconcile's).
type (
	TunnelStatus = reconcile.Status
	ApplyResult  = reconcile.Result
)

// Tunnel states, the State of a TunnelStatus (reconcile's).
const (
	TunnelStarting = reconcile.Starting
	TunnelUp       = reconcile.Up
	TunnelFailed   = reconcile.Failed
	TunnelClosed   = reconcile.Closed
)

// newTunnels returns the node's config tunnels, driving n.
func (n *Node) newTunnels() *reconcile.Set {
	return reconcile.New(reconcile.Config{
		Runner: (*runner)(n),
		Logger: n.log,
		Failed: func(st TunnelStatus) {
			n.emit(Event{Type: EventTunnelFailed, Name: st.Name, Kind: st.Kind, Protocol: st.Protocol, Error: st.Error})
		},
		Permanent:   func(err error) bool { return errors.Is(err, ErrUsage) || errors.Is(err, ErrClosed) },
		SaveListen:  n.opts.SaveListen,
		SaveForward: n.opts.SaveForward,
	})
}

// ApplyTunnels makes the node's config tunnels those of c, read from
// file (reconcile.Set.Apply): it changes nothing if one is invalid, and
// never touches tunnels made at runtime without --save.
func (n *Node) ApplyTunnels(ctx context.Context, file string, c config.Config) (ApplyResult, error) {
	if n.isClosed() {
		return ApplyResult{}, ErrClosed
	}
	return n.tunnels.Apply(ctx, file, c)
}

// Tunnels reports the config tunnels in config order.
func (n *Node) Tunnels() []TunnelStatus { return n.tunnels.Status() }

// runner is the node as its config tunnels drive it.
type runner Node

var _ reconcile.Runner = (*runner)(nil)

func (r *runner) Open(ctx context.Context, s spec.Spec) (registry.Listener, error) {
	return (*Node)(r).open(ctx, s)
}

func (r *runner) Has(id uint64) bool { return r.listeners.Has(id) }

func (r *runner) Close(id uint64) { (*Node)(r).closeListener(id) }

// closeListener closes listener id, if it is open, and its streams.
func (n *Node) closeListener(id uint64) {
	_, _ = n.listeners.CloseMatching(func(l *registry.Listener) bool { return l.ID == id })
}
