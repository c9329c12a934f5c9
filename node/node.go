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
	"github.com/p2ptun/p2ptun/listen"
	"github.com/p2ptun/p2ptun/registry"
	"github.com/p2ptun/p2ptun/ticket"
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

// ListenRequest asks the node to serve a protocol by dialing a local target.
type ListenRequest struct {
	// Name labels the tunnel in `ls`, events and metrics; optional.
	Name                string `json:",omitempty"`
	Protocol            string
	Target              string
	Allow               []string `json:",omitempty"`
	AllowAll            bool     `json:",omitempty"`
	ReportPeerID        bool     `json:",omitempty"`
	AllowCustomProtocol bool     `json:",omitempty"`
	// InviteOnly lets Allow be empty: peers join the allowlist by
	// redeeming invites (Share with Invite).
	InviteOnly bool `json:",omitempty"`
	// Save also appends the tunnel to the config file, so the daemon
	// starts it at boot and a reload keeps it.
	Save bool `json:",omitempty"`
}

// Listen registers a protocol handler. On error nothing is registered (and,
// with r.Save, nothing is saved).
func (n *Node) Listen(ctx context.Context, r ListenRequest) (registry.Listener, error) {
	if !r.Save {
		return n.listen(ctx, r)
	}
	t := config.ListenTunnel{
		Name: r.Name, Protocol: r.Protocol, Target: r.Target, Allow: r.Allow, AllowAll: r.AllowAll,
		InviteOnly: r.InviteOnly, ReportPeerID: r.ReportPeerID, AllowCustomProtocol: r.AllowCustomProtocol,
	}
	s := listenSpec(t)
	return n.saved(n.opts.SaveListen != nil,
		func() (registry.Listener, error) { return n.listen(ctx, *s.listen) },
		func(registry.Listener) (spec, func() error) { return s, func() error { return n.opts.SaveListen(t) } })
}

// saved starts a tunnel with start; record says, from what started, which
// config tunnel it is and how to save it. It is recorded as that tunnel
// and saved; if saving fails, the tunnel is closed again.
func (n *Node) saved(canSave bool, start func() (registry.Listener, error), record func(registry.Listener) (spec, func() error)) (registry.Listener, error) {
	if !canSave {
		return registry.Listener{}, fmt.Errorf("%w: --save needs a daemon with a config file; this one is --ephemeral", ErrUsage)
	}
	n.tunnels.applyMu.Lock()
	defer n.tunnels.applyMu.Unlock()
	l, err := start()
	if err != nil {
		return l, err
	}
	s, save := record(l)
	n.adopt(s, l.ID)
	if err := save(); err != nil {
		n.disown(s)
		_, _ = n.listeners.CloseMatching(func(x *registry.Listener) bool { return x.ID == l.ID })
		return registry.Listener{}, fmt.Errorf("tunnel not saved, and closed again: %w", err)
	}
	return l, nil
}

func (n *Node) listen(ctx context.Context, r ListenRequest) (registry.Listener, error) {
	if n.isClosed() {
		return registry.Listener{}, ErrClosed
	}
	proto, err := ParseProtocol(r.Protocol, r.AllowCustomProtocol)
	if err != nil {
		return registry.Listener{}, err
	}
	target, err := ParseTarget(r.Target)
	if err != nil {
		return registry.Listener{}, err
	}
	allow := make([]peer.ID, 0, len(r.Allow))
	allowStr := make([]string, 0, len(r.Allow))
	for _, s := range r.Allow {
		id, err := ParsePeer(s)
		if err != nil {
			return registry.Listener{}, err
		}
		if !slices.Contains(allow, id) {
			allow = append(allow, id)
			allowStr = append(allowStr, id.String())
		}
	}
	if r.InviteOnly && r.AllowAll {
		return registry.Listener{}, fmt.Errorf("%w: --invite-only and --allow-all contradict each other: choose one", ErrUsage)
	}
	if !r.AllowAll && len(allow) == 0 && !r.InviteOnly {
		return registry.Listener{}, fmt.Errorf("%w: %w", ErrUsage, listen.ErrNoAllowlist)
	}

	rec := &registry.Listener{
		Name:          r.Name,
		Kind:          registry.KindListen,
		Protocol:      string(proto),
		ListenAddress: "/p2p/" + n.host.ID().String(),
		TargetAddress: target.String(),
		AllowedPeers:  allowStr,
		AllowAll:      r.AllowAll,
		InviteOnly:    r.InviteOnly,
		ReportPeerID:  r.ReportPeerID,
	}
	if err := n.listeners.Reserve(rec); err != nil {
		return registry.Listener{}, err
	}
	l, err := listen.New(n.host, listen.Config{
		Protocol:     proto,
		Target:       target,
		Allow:        allow,
		AllowAll:     r.AllowAll,
		InviteOnly:   r.InviteOnly,
		ReportPeerID: r.ReportPeerID,
		DialTimeout:  n.opts.Timeouts.TargetDial.Std(),
		PeerRate:     n.opts.Limits.PeerStreamRate,
		PeerBurst:    n.opts.Limits.PeerStreamBurst,
		Limited:      n.limited,
		Logger:       n.log,
		Streams:      &n.streams,
		ListenerID:   rec.ID,
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
	n.log.Info("listener opened", "proto", rec.Protocol, "target", rec.TargetAddress, "allow", allowStr, "allow_all", r.AllowAll, "invite_only", r.InviteOnly)
	return snapshot(rec), nil
}

// ForwardRequest asks the node to bind a local address and forward each
// connection to a peer's protocol.
type ForwardRequest struct {
	// Name labels the tunnel in `ls`, events and metrics; optional.
	Name                string `json:",omitempty"`
	Protocol            string
	ListenAddress       string
	Peer                string
	AllowCustomProtocol bool `json:",omitempty"`
	// Lazy skips connecting to the peer now; the first client connection
	// will. By default Forward fails if the peer cannot be reached.
	Lazy bool `json:",omitempty"`
	// AllowLimited lets the forward use relayed connections that the relay
	// limits in time or data.
	AllowLimited bool `json:",omitempty"`
	// Save also appends the tunnel to the config file.
	Save bool `json:",omitempty"`

	// Addrs are more addresses of Peer (multiaddrs, with or without
	// /p2p/ID), as a ticket lists them.
	Addrs []string `json:",omitempty"`
	// Invite is an invite's secret, presented to the peer after connecting
	// and before anything is bound; a refused invite fails the forward
	// with ErrDenied. It cannot be Lazy.
	Invite []byte `json:",omitempty"`
}

// Forward binds a local listener whose connections become streams to the
// peer. Unless r.Lazy, it first connects to the peer and fails with
// ErrUnreachable if it cannot. On error nothing is bound or registered.
func (n *Node) Forward(ctx context.Context, r ForwardRequest) (registry.Listener, error) {
	if !r.Save {
		return n.forward(ctx, r)
	}
	// The table keeps the peer and its addresses but never an invite's
	// secret: once redeemed, the peer is on the listener's allowlist.
	t := config.ForwardTunnel{
		Name: r.Name, Protocol: r.Protocol, Listen: r.ListenAddress, Peer: r.Peer, Addrs: r.Addrs, Lazy: r.Lazy,
		AllowLimited: r.AllowLimited, AllowCustomProtocol: r.AllowCustomProtocol,
	}
	return n.saved(n.opts.SaveForward != nil,
		func() (registry.Listener, error) {
			req := *forwardSpec(t).fwd
			req.Invite = r.Invite
			return n.forward(ctx, req)
		},
		func(l registry.Listener) (spec, func() error) {
			// Port 0 is saved as the port it got, so that a restart or a
			// reload binds the same one.
			t.Listen = boundListen(t.Listen, l.ListenAddress)
			return forwardSpec(t), func() error { return n.opts.SaveForward(t) }
		})
}

func (n *Node) forward(ctx context.Context, r ForwardRequest) (registry.Listener, error) {
	if n.isClosed() {
		return registry.Listener{}, ErrClosed
	}
	proto, err := ParseProtocol(r.Protocol, r.AllowCustomProtocol)
	if err != nil {
		return registry.Listener{}, err
	}
	laddr, err := ParseListenAddr(r.ListenAddress)
	if err != nil {
		return registry.Listener{}, err
	}
	pi, err := ParsePeerAddr(r.Peer)
	if err != nil {
		return registry.Listener{}, err
	}
	if pi.ID == n.host.ID() {
		return registry.Listener{}, fmt.Errorf("%w: %s is this node's own peer ID; forward to another peer", ErrUsage, pi.ID)
	}
	if pi, err = withAddrs(pi, r.Addrs); err != nil {
		return registry.Listener{}, err
	}
	if len(r.Invite) > 0 {
		if len(r.Invite) < ticket.MinSecretLen || len(r.Invite) > ticket.MaxSecretLen {
			return registry.Listener{}, fmt.Errorf("%w: an invite secret is %d to %d bytes, not %d", ErrUsage, ticket.MinSecretLen, ticket.MaxSecretLen, len(r.Invite))
		}
		if r.Lazy {
			return registry.Listener{}, fmt.Errorf("%w: an invite is presented when the forward opens, so the forward cannot be --lazy; drop --lazy", ErrUsage)
		}
	}
	if !n.opts.Access.Allowed(pi.ID) {
		return registry.Listener{}, fmt.Errorf("%w: peer %s is refused by this node's access policy; see `p2ptun access ls`, or run `p2ptun access allow %s`", ErrDenied, pi.ID, pi.ID)
	}
	n.addAddrs(pi)
	if !r.Lazy {
		if err := n.connect(ctx, pi.ID); err != nil {
			if viaRelay(pi) {
				err = fmt.Errorf("%w; through a relay, both peers must be on the relay's allow list and %s must hold a reservation on it (it logs \"relay reservation held\")", err, pi.ID)
			}
			return registry.Listener{}, err
		}
	}
	if len(r.Invite) > 0 {
		if err := n.presentInvite(ctx, pi.ID, r.Invite, r.AllowLimited); err != nil {
			return registry.Listener{}, err
		}
	}

	// The forward binds, then registers (under its bound address, a
	// port 0 made real), then accepts: from its first client on, it is
	// listed and its connections are recorded under its ID.
	rec := &registry.Listener{
		Name:          r.Name,
		Kind:          registry.KindForward,
		Protocol:      string(proto),
		TargetAddress: "/p2p/" + pi.ID.String(),
		Peer:          pi.ID.String(),
	}
	var regErr error
	f, err := forward.New(n.host, forward.Config{
		Protocol:          proto,
		ListenAddr:        laddr,
		Peer:              pi.ID,
		DialTimeout:       n.opts.Timeouts.Dial.Std(),
		StreamOpenTimeout: n.opts.Timeouts.StreamOpen.Std(),
		AllowLimited:      r.AllowLimited,
		Listen:            n.opts.BindForward,
		Logger:            n.log,
		Limited:           n.limited,
		Streams:           &n.streams,
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

// withAddrs adds addrs, multiaddrs of pi's peer with or without /p2p/ID,
// to pi.
func withAddrs(pi peer.AddrInfo, addrs []string) (peer.AddrInfo, error) {
	if len(addrs) > ticket.MaxAddrs {
		return pi, fmt.Errorf("%w: %d peer addresses, more than %d", ErrUsage, len(addrs), ticket.MaxAddrs)
	}
	pi.Addrs = slices.Clone(pi.Addrs)
	for _, s := range addrs {
		m, err := ma.NewMultiaddr(s)
		if err != nil {
			return pi, fmt.Errorf("%w: peer address %q is not a valid multiaddr (%s)", ErrUsage, s, forward.OneLine(err))
		}
		transport, id := peer.SplitAddr(m)
		if id != "" && id != pi.ID {
			return pi, fmt.Errorf("%w: peer address %s is for peer %s, not %s", ErrUsage, m, id, pi.ID)
		}
		if len(transport) == 0 {
			return pi, fmt.Errorf("%w: peer address %s has no transport, like /ip4/HOST/tcp/PORT", ErrUsage, m)
		}
		pi.Addrs = append(pi.Addrs, transport)
	}
	return pi, nil
}

// viaRelay reports whether the user addressed the peer through a relay.
func viaRelay(pi peer.AddrInfo) bool {
	for _, a := range pi.Addrs {
		if _, err := a.ValueForProtocol(ma.P_CIRCUIT); err == nil {
			return true
		}
	}
	return false
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
	m, err := ParseAddr(s)
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
