package node

import (
	"context"

	"github.com/p2ptun/p2ptun/listen"
	"github.com/p2ptun/p2ptun/registry"
	"github.com/p2ptun/p2ptun/spec"
	seam "github.com/p2ptun/p2ptun/tunnel"
)

// listen builds the far side of s, a listen spec, and registers it
// through the seam: its slot is reserved and committed (Config.Register)
// before its stream handler is set, so every stream is recorded under
// its ID. A new kind of listener is built here, or in a file like this.
func (n *Node) listen(ctx context.Context, s spec.Spec) (registry.Listener, error) {
	allow := ids(s.Allow)
	rec := &registry.Listener{
		Name:          s.Name,
		Kind:          registry.KindListen,
		Protocol:      string(s.Protocol),
		ListenAddress: "/p2p/" + n.host.ID().String(),
		TargetAddress: s.Target.String(),
		AllowedPeers:  allow,
		AllowAll:      s.AllowAll,
		InviteOnly:    s.InviteOnly,
		ReportPeerID:  s.ReportPeerID,
		ProxyProtocol: s.ProxyProtocol,
		Egress:        s.Egress,
		Permit:        s.Permit.Strings(),
	}
	var l *listen.Listener
	l, err := listen.New(n.host, listen.Config{
		Side: n.side(s, func() (uint64, error) {
			return n.register(rec, l.StopAccepting, func(id uint64) func() error { return n.serve(id, l) })
		}),
		Target:       s.Target,
		Allow:        s.Allow,
		AllowAll:     s.AllowAll,
		InviteOnly:   s.InviteOnly,
		ReportPeerID: s.ReportPeerID,
		DialTimeout:  n.opts.Timeouts.TargetDial.Std(),
		PeerRate:     n.opts.Limits.PeerStreamRate,
		PeerBurst:    n.opts.Limits.PeerStreamBurst,

		NamedPeerRate:  n.opts.Limits.NamedPeerStreamRate,
		NamedPeerBurst: n.opts.Limits.NamedPeerStreamBurst,
		Now:            n.opts.Now,
		Datagrams:      n.datagrams(),

		ProxyProtocol: s.ProxyProtocol,
		Egress:        s.Permit,
	})
	if err != nil {
		return registry.Listener{}, err
	}
	if err := n.run(ctx, rec, l.Start, l.Close); err != nil {
		return registry.Listener{}, err
	}
	key, target := "target", any(rec.TargetAddress)
	if s.Egress { // no target: what it may dial
		key, target = "permit", rec.Permit
	}
	n.log.Info("listener opened", "proto", rec.Protocol, key, target, "allow", allow, "allow_all", s.AllowAll, "invite_only", s.InviteOnly)
	return snapshot(rec), nil
}

// side is what every kind's Config starts from: s's protocol, the node's
// stream registry and loggers, and register, the kind's Config.Register.
func (n *Node) side(s spec.Spec, register func() (uint64, error)) seam.Side {
	return seam.Side{Protocol: s.Protocol, Streams: &n.streams, Logger: n.log, Limited: n.limited, Register: register}
}

// register is the body of a kind's Config.Register: it reserves rec's
// slot, lets serve hook the tunnel up under its ID and return the Close
// that undoes that and closes the tunnel, commits the slot (the tunnel is
// listed, and reported up, from now on) and returns the ID.
func (n *Node) register(rec *registry.Listener, stop func(), serve func(id uint64) (close func() error)) (uint64, error) {
	if err := n.listeners.Reserve(rec); err != nil {
		return 0, err
	}
	rec.Close, rec.StopAccepting = serve(rec.ID), stop
	n.listeners.Commit(rec)
	return rec.ID, nil
}

// run starts a built tunnel, whose Start registers it. If that fails,
// the tunnel is closed: through the registry once it is listed there.
func (n *Node) run(ctx context.Context, rec *registry.Listener, start func(context.Context) error, close func() error) error {
	err := start(ctx)
	if err != nil {
		if rec.ID != 0 && n.listeners.Has(rec.ID) {
			n.closeListener(rec.ID)
		} else {
			_ = close()
		}
	}
	return err
}
