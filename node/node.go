package node

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"syscall"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/peerstore"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/p2ptun/p2ptun/config"
	"github.com/p2ptun/p2ptun/forward"
	"github.com/p2ptun/p2ptun/invite"
	"github.com/p2ptun/p2ptun/listen"
	"github.com/p2ptun/p2ptun/registry"
	"github.com/p2ptun/p2ptun/spec"
)

// Listener and StreamInfo are the records Listeners and Streams return;
// they are the registry's, named here so that callers above the node need
// not import the registry.
type (
	Listener   = registry.Listener
	StreamInfo = registry.StreamInfo
)

// Identity is what `p2ptun id` prints; field names follow kubo's `ipfs id`.
type Identity struct {
	ID           string
	Addresses    []string
	AgentVersion string
}

// Identity returns the node's peer ID and its dialable addresses, each
// ending in /p2p/<ID>.
func (n *Node) Identity() Identity {
	id := n.host.ID()
	suffix := "/p2p/" + id.String()
	addrs := make([]string, 0, len(n.host.Addrs()))
	for _, a := range n.host.Addrs() {
		addrs = append(addrs, a.String()+suffix)
	}
	slices.Sort(addrs)
	return Identity{ID: id.String(), Addresses: addrs, AgentVersion: n.opts.UserAgent}
}

// Listen registers a protocol handler for s, a spec.KindListen spec. On
// error nothing is registered (and, with s.Save, nothing is saved).
func (n *Node) Listen(ctx context.Context, s spec.Spec) (registry.Listener, error) {
	if s.Kind != spec.KindListen {
		return registry.Listener{}, fmt.Errorf("%w: Listen given a %q spec", ErrUsage, s.Kind)
	}
	if !s.Save {
		return n.listen(ctx, s)
	}
	// It runs as the config tunnel it is saved as, which a reload leaves
	// alone.
	t := config.ListenTable(s.Request)
	ct, err := listenTunnel(t)
	if err != nil {
		return registry.Listener{}, err
	}
	return n.saved(n.opts.SaveListen != nil,
		func() (registry.Listener, error) { return n.listen(ctx, ct.spec) },
		func(registry.Listener) (configTunnel, func() error, error) {
			return ct, func() error { return n.opts.SaveListen(t) }, nil
		})
}

// saved starts a tunnel with start; record says, from what started, which
// config tunnel it is and how to save it. It is recorded as that tunnel
// and saved; if saving fails, the tunnel is closed again.
func (n *Node) saved(canSave bool, start func() (registry.Listener, error), record func(registry.Listener) (configTunnel, func() error, error)) (registry.Listener, error) {
	if !canSave {
		return registry.Listener{}, fmt.Errorf("%w: --save needs a daemon with a config file; this one is --ephemeral", ErrUsage)
	}
	n.tunnels.applyMu.Lock()
	defer n.tunnels.applyMu.Unlock()
	l, err := start()
	if err != nil {
		return l, err
	}
	s, save, err := record(l)
	if err != nil {
		_, _ = n.listeners.CloseMatching(func(x *registry.Listener) bool { return x.ID == l.ID })
		return registry.Listener{}, fmt.Errorf("tunnel not saved, and closed again: %w", err)
	}
	n.adopt(s, l.ID)
	if err := save(); err != nil {
		n.disown(s)
		_, _ = n.listeners.CloseMatching(func(x *registry.Listener) bool { return x.ID == l.ID })
		return registry.Listener{}, fmt.Errorf("tunnel not saved, and closed again: %w", err)
	}
	return l, nil
}

func (n *Node) listen(ctx context.Context, s spec.Spec) (registry.Listener, error) {
	if n.isClosed() {
		return registry.Listener{}, ErrClosed
	}
	proto, target, allow := s.Protocol, s.Target, s.Allow
	allowStr := make([]string, len(allow))
	for i, id := range allow {
		allowStr[i] = id.String()
	}

	rec := &registry.Listener{
		Name:          s.Name,
		Kind:          registry.KindListen,
		Protocol:      string(proto),
		ListenAddress: "/p2p/" + n.host.ID().String(),
		TargetAddress: target.String(),
		AllowedPeers:  allowStr,
		AllowAll:      s.AllowAll,
		InviteOnly:    s.InviteOnly,
		ReportPeerID:  s.ReportPeerID,
		Egress:        s.Egress,
		Permit:        s.Permit.Strings(),
	}
	if err := n.listeners.Reserve(rec); err != nil {
		return registry.Listener{}, err
	}
	l, err := listen.New(n.host, listen.Config{
		Protocol:     proto,
		Target:       target,
		Allow:        allow,
		AllowAll:     s.AllowAll,
		InviteOnly:   s.InviteOnly,
		ReportPeerID: s.ReportPeerID,
		DialTimeout:  n.opts.Timeouts.TargetDial.Std(),
		PeerRate:     n.opts.Limits.PeerStreamRate,
		PeerBurst:    n.opts.Limits.PeerStreamBurst,
		Limited:      n.limited,
		Logger:       n.log,
		Streams:      &n.streams,
		ListenerID:   rec.ID,
		Egress:       s.Permit,
	})
	if err == nil {
		err = l.Start(ctx)
	}
	if err != nil {
		n.listeners.Release(rec)
		if l != nil {
			_ = l.Close()
		}
		return registry.Listener{}, err
	}
	rec.Close, rec.StopAccepting = n.serve(rec.ID, l), l.StopAccepting
	n.listeners.Commit(rec)
	n.log.Info("listener opened", "proto", rec.Protocol, "target", rec.TargetAddress, "allow", allowStr, "allow_all", s.AllowAll, "invite_only", s.InviteOnly)
	return snapshot(rec), nil
}

// Forward binds a local listener whose connections become streams to the
// peer of s, a spec.KindForward spec. Unless s.Lazy, it first connects to
// the peer and fails with ErrUnreachable if it cannot. On error nothing is
// bound or registered.
func (n *Node) Forward(ctx context.Context, s spec.Spec) (registry.Listener, error) {
	if s.Kind != spec.KindForward {
		return registry.Listener{}, fmt.Errorf("%w: Forward given a %q spec", ErrUsage, s.Kind)
	}
	if !s.Save {
		return n.forward(ctx, s)
	}
	// The table keeps the peer and its addresses but never an invite's
	// secret: once redeemed, the peer is on the listener's allowlist.
	t := config.ForwardTable(s.Request)
	ct, err := forwardTunnel(t)
	if err != nil {
		return registry.Listener{}, err
	}
	run := ct.spec
	run.Invite = s.Invite
	return n.saved(n.opts.SaveForward != nil,
		func() (registry.Listener, error) { return n.forward(ctx, run) },
		func(l registry.Listener) (configTunnel, func() error, error) {
			// Port 0 is saved as the port it got, so that a restart or a
			// reload binds the same one.
			t.Listen = spec.BoundListen(t.Listen, l.ListenAddress)
			ct, err := forwardTunnel(t)
			return ct, func() error { return n.opts.SaveForward(t) }, err
		})
}

func (n *Node) forward(ctx context.Context, s spec.Spec) (registry.Listener, error) {
	if n.isClosed() {
		return registry.Listener{}, ErrClosed
	}
	proto, laddr, pi := s.Protocol, s.Listen, s.Peer
	if err := n.preparePeer(pi, "forward to another peer"); err != nil {
		return registry.Listener{}, err
	}
	if !s.Lazy {
		if err := n.connect(ctx, pi.ID); err != nil {
			if s.ViaRelay() {
				err = fmt.Errorf("%w; through a relay, both peers must be on the relay's allow list and %s must hold a reservation on it (it logs \"relay reservation held\")", err, pi.ID)
			}
			return registry.Listener{}, err
		}
	}
	if len(s.Invite) > 0 {
		if err := invite.Present(ctx, n.host, pi.ID, s.Invite, s.AllowLimited, n.opts.Timeouts.Dial.Std(), n.opts.Timeouts.StreamOpen.Std()); err != nil {
			return registry.Listener{}, err
		}
	}

	// The forward binds, then registers (under its bound address, a
	// port 0 made real), then accepts: from its first client on, it is
	// listed and its connections are recorded under its ID.
	rec := &registry.Listener{
		Name:          s.Name,
		Kind:          registry.KindForward,
		Protocol:      string(proto),
		TargetAddress: "/p2p/" + pi.ID.String(),
		Peer:          pi.ID.String(),
		Socks:         s.Socks,
	}
	var regErr error
	f, err := forward.New(n.host, forward.Config{
		Protocol:          proto,
		ListenAddr:        laddr,
		Peer:              pi.ID,
		DialTimeout:       n.opts.Timeouts.Dial.Std(),
		StreamOpenTimeout: n.opts.Timeouts.StreamOpen.Std(),
		AllowLimited:      s.AllowLimited,
		Listen:            n.opts.BindForward,
		Logger:            n.log,
		Limited:           n.limited,
		Streams:           &n.streams,
		Socks:             s.Socks,
		Register: func(bound ma.Multiaddr) (uint64, error) {
			rec.ListenAddress = bound.String()
			if regErr = n.listeners.Reserve(rec); regErr != nil {
				return 0, regErr
			}
			n.listeners.Commit(rec)
			return rec.ID, nil
		},
	})
	if err != nil {
		return registry.Listener{}, err
	}
	rec.Close, rec.StopAccepting = f.Close, f.StopAccepting
	if err := f.Start(ctx); err != nil {
		_ = f.Close()
		switch {
		case regErr != nil:
			return registry.Listener{}, regErr
		case errors.Is(err, syscall.EADDRINUSE):
			return registry.Listener{}, fmt.Errorf("%w: %s: pick another port, or 0 for a free one", ErrAddrInUse, laddr)
		}
		return registry.Listener{}, fmt.Errorf("binding %s: %w", laddr, err)
	}
	n.log.Info("forward opened", "proto", rec.Protocol, "laddr", rec.ListenAddress, "peer", rec.Peer)
	return snapshot(rec), nil
}

// preparePeer checks that pi is another peer, one that this node's access
// policy allows, and remembers the addresses the user gave for it: the
// one preparation before a forward, a pipe or a ping dials it. instead
// says what to do about the node's own ID ("forward to another peer").
func (n *Node) preparePeer(pi peer.AddrInfo, instead string) error {
	if pi.ID == n.host.ID() {
		return fmt.Errorf("%w: %s is this node's own peer ID; %s", ErrUsage, pi.ID, instead)
	}
	if !n.opts.Access.Allowed(pi.ID) {
		return fmt.Errorf("%w: peer %s is refused by this node's access policy; see `p2ptun access ls`, or run `p2ptun access allow %s`", ErrDenied, pi.ID, pi.ID)
	}
	n.addAddrs(pi)
	return nil
}

// addAddrs remembers the addresses a user gave for a peer.
func (n *Node) addAddrs(pi peer.AddrInfo) {
	if len(pi.Addrs) > 0 {
		n.host.Peerstore().AddAddrs(pi.ID, pi.Addrs, peerstore.PermanentAddrTTL)
	}
}

// connect dials p unless connected, with the configured timeout, and says
// what to try when it cannot.
func (n *Node) connect(ctx context.Context, p peer.ID) error {
	if err := forward.Connect(ctx, n.host, p, n.opts.Timeouts.Dial.Std()); err != nil {
		if errors.Is(err, ErrDenied) {
			return err // the peer answered: it refuses this node
		}
		return fmt.Errorf("%w (is its daemon running? pass a full address like /ip4/HOST/tcp/PORT/p2p/%s, or --lazy to connect on first use)", err, p)
	}
	return nil
}

// CloseRequest selects listeners to close. Exactly one field must be set.
type CloseRequest struct {
	All           bool   `json:",omitempty"`
	Protocol      string `json:",omitempty"`
	ListenAddress string `json:",omitempty"`
	TargetAddress string `json:",omitempty"`
}

// CloseListeners closes the listeners that r selects, and their streams. It returns
// how many it closed, or ErrNotFound when none matched.
func (n *Node) CloseListeners(_ context.Context, r CloseRequest) (int, error) {
	set := 0
	for _, b := range []bool{r.All, r.Protocol != "", r.ListenAddress != "", r.TargetAddress != ""} {
		if b {
			set++
		}
	}
	if set != 1 {
		return 0, fmt.Errorf("%w: choose exactly one of -a, -p PROTO, -l LISTEN-ADDR, -t TARGET", ErrUsage)
	}
	match := func(*registry.Listener) bool { return true }
	switch {
	case r.Protocol != "":
		match = func(l *registry.Listener) bool { return l.Protocol == r.Protocol }
	case r.ListenAddress != "":
		want, err := canonicalAddr(r.ListenAddress)
		if err != nil {
			return 0, err
		}
		match = func(l *registry.Listener) bool { return l.ListenAddress == want }
	case r.TargetAddress != "":
		want, err := canonicalAddr(r.TargetAddress)
		if err != nil {
			return 0, err
		}
		match = func(l *registry.Listener) bool { return l.TargetAddress == want }
	}
	count, err := n.listeners.CloseMatching(match)
	if err == nil {
		n.log.Info("listeners closed", "count", count)
	}
	return count, err
}

func canonicalAddr(s string) (string, error) {
	m, err := spec.ParseAddr(s)
	if err != nil {
		return "", err
	}
	return m.String(), nil
}

// Listeners lists the listeners and forwards in the order they were opened.
func (n *Node) Listeners() []registry.Listener { return n.listeners.List() }

// Streams lists the live streams in the order they were opened.
func (n *Node) Streams() []registry.StreamInfo { return n.streams.List() }

// CloseStream aborts one stream and waits for it to end.
func (n *Node) CloseStream(ctx context.Context, id uint64) error {
	return n.streams.Close(ctx, id)
}

// CloseAllStreams aborts every live stream and waits for them to end.
func (n *Node) CloseAllStreams(ctx context.Context) (int, error) {
	return n.streams.CloseMatching(ctx, func(*registry.Stream) bool { return true })
}

func snapshot(l *registry.Listener) registry.Listener {
	c := *l
	c.AllowedPeers = slices.Clone(l.AllowedPeers)
	c.Close = nil
	return c
}
