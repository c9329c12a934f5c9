package balance

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/event"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"

	"github.com/p2ptun/p2ptun/oneline"
	"github.com/p2ptun/p2ptun/peerdial"
	"github.com/p2ptun/p2ptun/registry"
)

// Config describes the peers of a forward with several.
type Config struct {
	// Peers, in order of preference. Two or more.
	Peers []peer.ID
	// Protocol is the forward's protocol. A peer that refused it (a
	// stream open failed with peerdial.ErrNoListener) comes back up only
	// once it says it serves it again (identify), not merely because it
	// is still connected.
	Protocol protocol.ID
	// Policy picks among the peers that are up; "" is Failover.
	Policy Policy
	// AllowLimited counts a peer with only a limited relayed connection
	// as up.
	AllowLimited bool
	// RTT, if set, returns the measured round-trip time to a peer, 0 if
	// none, for RTT and the peers' states.
	RTT func(peer.ID) time.Duration
	// Changed, if set, is told when a peer goes down (err says why) or
	// comes back up (err is nil), in the order it happens. It must not
	// block.
	Changed func(p peer.ID, up bool, err error)
	// RedialMin and RedialMax bound the hold-off before a watcher dials a
	// peer that went down.
	RedialMin, RedialMax time.Duration
}

// Owner runs a Set's goroutines and ends them: the forward's tunnel
// (*tunnel.Tunnel).
type Owner interface {
	// Context ends when the goroutines must return.
	Context() context.Context
	// Go runs fn on a goroutine the owner waits for, unless it is closing
	// (false).
	Go(fn func()) bool
}

// errDisconnected is why a peer that was connected is down.
var errDisconnected = errors.New("disconnected")

// Set is the peers of a forward with several (Config.Peers) and their
// health: which are up, why the others went down, and when to try them
// again. Each connection's Opener asks it for the order to try them in.
//
// A peer goes down when its last connection closes (libp2p's
// connectedness event: a closed socket, or the keepalive cutting off a
// peer that stopped answering) or when a stream open to it fails; it
// comes back up when a connection to it is made again, which a watcher
// per peer tries with the forward's redial backoff.
type Set struct {
	h            host.Host
	proto        protocol.ID
	policy       Policy
	allowLimited bool
	rtt          func(peer.ID) time.Duration
	changed      func(p peer.ID, up bool, err error)
	min, max     time.Duration // the hold-off after a peer goes down

	mu    sync.Mutex
	peers []*peerState
	turn  uint64 // connections so far, for round-robin
}

// peerState is one peer of a Set.
type peerState struct {
	id     peer.ID
	str    string
	redial peerdial.Gate // its dial gate, shared by clients and the watcher
	kick   chan struct{} // wakes the watcher when the peer goes down or up

	// guarded by the set's mu
	up  bool
	err error // why it went down last
	// unserved: it went down because it refused the protocol; it comes
	// back up only once its protocols (identify) include it again.
	unserved bool
	wait     time.Duration // the current hold-off; reset by a stream opened
	retry    time.Time     // not dialed by the watcher before this
}

// New returns the set of cfg's peers on h, all up until Start looks.
func New(h host.Host, cfg Config) *Set {
	ps := &Set{
		h: h, proto: cfg.Protocol, policy: cfg.Policy, allowLimited: cfg.AllowLimited, rtt: cfg.RTT, changed: cfg.Changed,
		min: cfg.RedialMin, max: cfg.RedialMax,
	}
	for _, p := range cfg.Peers {
		// A peer starts up: until a connection to it fails, it may serve.
		ps.peers = append(ps.peers, &peerState{id: p, str: p.String(), up: true, kick: make(chan struct{}, 1)})
	}
	return ps
}

// Start subscribes to connectedness changes and starts a watcher per peer,
// on goroutines t owns, which end with t's context. A peer that is not
// connected is marked down, so that its watcher dials it at once with
// connect.
func (ps *Set) Start(t Owner, connect func(context.Context, peer.ID, *peerdial.Gate) error) error {
	sub, err := ps.h.EventBus().Subscribe([]any{new(event.EvtPeerConnectednessChanged), new(event.EvtPeerProtocolsUpdated)})
	if err != nil {
		return fmt.Errorf("forward: watching its peers: %w", err)
	}
	ctx := t.Context()
	if !t.Go(func() { ps.follow(ctx, sub) }) {
		_ = sub.Close()
		return nil
	}
	for _, st := range ps.peers {
		if !ps.usable(st.id) {
			ps.setDown(st, fmt.Errorf("%w: not connected yet", peerdial.ErrUnreachable), false)
		}
		t.Go(func() { ps.watch(ctx, st, connect) })
	}
	return nil
}

// usable reports whether there is a connection to p that streams may use.
func (ps *Set) usable(p peer.ID) bool {
	switch ps.h.Network().Connectedness(p) {
	case network.Connected:
		return true
	case network.Limited:
		return ps.allowLimited
	}
	return false
}

// follow marks peers down when their last connection closes and up when
// one is made, until ctx ends (which closes sub, ending its channel).
func (ps *Set) follow(ctx context.Context, sub event.Subscription) {
	stop := context.AfterFunc(ctx, func() { _ = sub.Close() })
	defer stop()
	defer sub.Close()
	for e := range sub.Out() {
		switch ch := e.(type) {
		case event.EvtPeerConnectednessChanged:
			st := ps.find(ch.Peer)
			switch {
			case st == nil:
			case ch.Connectedness == network.NotConnected:
				ps.setDown(st, errDisconnected, true)
			case ps.usable(ch.Peer) && ps.serves(st):
				ps.setUp(st)
			}
		case event.EvtPeerProtocolsUpdated:
			// A peer that refused the protocol serves it again: up at
			// once, without waiting for its watcher's hold-off.
			if st := ps.find(ch.Peer); st != nil && slices.Contains(ch.Added, ps.proto) && ps.usable(ch.Peer) {
				ps.setUp(st)
			}
		}
	}
}

// serves reports whether st may be up as far as its protocol goes: it
// did not refuse the protocol, or its protocols (as identify last
// reported them) include it again.
func (ps *Set) serves(st *peerState) bool {
	ps.mu.Lock()
	unserved := st.unserved
	ps.mu.Unlock()
	if !unserved {
		return true
	}
	got, err := ps.h.Peerstore().SupportsProtocols(st.id, ps.proto)
	return err == nil && len(got) > 0
}

func (ps *Set) find(p peer.ID) *peerState {
	for _, st := range ps.peers {
		if st.id == p {
			return st
		}
	}
	return nil
}

// watch redials st whenever it is down, after its hold-off, until it is
// up again or ctx ends.
func (ps *Set) watch(ctx context.Context, st *peerState, connect func(context.Context, peer.ID, *peerdial.Gate) error) {
	for {
		ps.mu.Lock()
		up, wait := st.up, time.Until(st.retry)
		ps.mu.Unlock()
		if up {
			select {
			case <-st.kick:
				continue
			case <-ctx.Done():
				return
			}
		}
		if wait > 0 {
			tm := time.NewTimer(wait)
			select {
			case <-tm.C:
			case <-st.kick: // up again, or down once more: look again
				tm.Stop()
				continue
			case <-ctx.Done():
				tm.Stop()
				return
			}
		}
		err := connect(ctx, st.id, &st.redial)
		if ctx.Err() != nil {
			return
		}
		if err == nil && ps.usable(st.id) && ps.serves(st) {
			ps.setUp(st)
			continue
		}
		switch {
		case err == nil && !ps.usable(st.id):
			err = fmt.Errorf("%w: only a limited relayed connection", peerdial.ErrUnreachable)
		case err == nil: // connected, but it still does not serve the protocol
			ps.mu.Lock()
			err = st.err
			ps.mu.Unlock()
		}
		ps.setDown(st, err, true)
	}
}

// setDown marks st down for err. With hold, the watcher waits a hold-off
// before dialing it (RedialMin, doubling each time the peer goes down
// again without a stream opened in between, up to RedialMax).
func (ps *Set) setDown(st *peerState, err error, hold bool) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	was := st.up
	st.up, st.err = false, err
	st.unserved = errors.Is(err, peerdial.ErrNoListener)
	if st.unserved && ps.proto != "" {
		// It said so itself: until identify says otherwise (a push when
		// it serves the protocol again, or a new connection), the
		// peerstore must not say it serves it.
		_ = ps.h.Peerstore().RemoveProtocols(st.id, ps.proto)
	}
	if hold {
		st.wait = min(max(2*st.wait, ps.min), ps.max)
		st.retry = time.Now().Add(st.wait)
	}
	if was && ps.changed != nil {
		ps.changed(st.id, false, err) // under mu: transitions are told in order
	}
	select {
	case st.kick <- struct{}{}:
	default:
	}
}

// setUp marks st up.
func (ps *Set) setUp(st *peerState) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	if st.up {
		return
	}
	st.up, st.unserved = true, false
	if ps.changed != nil {
		ps.changed(st.id, true, nil)
	}
	select {
	case st.kick <- struct{}{}:
	default:
	}
}

// Open opens a stream for one connection with try: to the peer the
// policy picks among those up, and if that fails, to the next, and so on
// (the peers that are down last), so that a peer going down fails no
// client while another one is up. A peer whose open fails is marked
// down. It returns the last peer's error if none took the connection.
func (ps *Set) Open(ctx context.Context, try func(context.Context, peer.ID, *peerdial.Gate) (network.Stream, error)) (network.Stream, error) {
	ps.mu.Lock()
	hs := make([]health, len(ps.peers))
	for i, st := range ps.peers {
		hs[i] = health{up: st.up}
		if ps.policy == RTT && ps.rtt != nil {
			hs[i].rtt = ps.rtt(st.id)
		}
	}
	turn := ps.turn
	ps.turn++
	ps.mu.Unlock()
	var last error
	for _, i := range order(ps.policy, hs, turn) {
		st := ps.peers[i]
		s, err := try(ctx, st.id, &st.redial)
		if err == nil {
			ps.mu.Lock()
			st.wait = 0
			ps.mu.Unlock()
			ps.setUp(st)
			return s, nil
		}
		if ctx.Err() != nil {
			return nil, err
		}
		var bo *peerdial.BackoffError
		if !errors.As(err, &bo) { // a peer in its backoff is down already
			ps.setDown(st, err, true)
		}
		last = err
	}
	return nil, last
}

// States reports each peer's state, in the order given.
func (ps *Set) States() []registry.ListenerPeer {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	out := make([]registry.ListenerPeer, len(ps.peers))
	for i, st := range ps.peers {
		out[i] = registry.ListenerPeer{Peer: st.str, Up: st.up}
		if st.err != nil {
			out[i].Error = oneline.Error(st.err)
		}
		if ps.rtt != nil {
			out[i].RTT = ps.rtt(st.id)
		}
	}
	return out
}
