package registry

import (
	"fmt"
	"slices"
	"sync"
	"time"
)

// Kind says which way a listener moves connections.
type Kind string

const (
	// KindListen is a libp2p protocol handler that dials a local target.
	KindListen Kind = "listen"
	// KindForward is a local TCP listener that opens streams to a peer.
	KindForward Kind = "forward"
	// KindPipe marks a stream that `p2ptun pipe` opened through the API:
	// no listener made it, and its ListenerID is 0.
	KindPipe Kind = "pipe"
)

// Listener describes one registered listener. The exported fields are a
// snapshot safe to copy; Close belongs to the owner.
type Listener struct {
	ID            uint64
	Name          string // a config-file tunnel's name; "" for one made at runtime
	Kind          Kind
	Protocol      string
	ListenAddress string // forward: the local bind address; listen: /p2p/<self>
	TargetAddress string // forward: /p2p/<peer>; listen: the local target
	Peer          string // forward: the remote peer ID
	AllowedPeers  []string
	AllowAll      bool
	InviteOnly    bool // listen: the allowlist may start empty and grow by invites
	ReportPeerID  bool
	ProxyProtocol byte // listen: the PROXY header's version, 1 or 2; 0 for none
	// Balance and Peers are a forward with several peers' policy and its
	// peers, each with its state, in the order given (then Peer is
	// empty). List fills Peers from PeerStates.
	Balance string
	Peers   []ListenerPeer
	// PeerStates, if set, reports the state of a forward's peers now.
	PeerStates func() []ListenerPeer
	// Egress: a SOCKS egress listener and its Permit rules; Socks: a
	// forward that is a local SOCKS5 server.
	Egress bool
	Permit []string
	Socks  bool

	// Close stops the listener and ends its streams; it blocks until they
	// are gone. Called at most once, outside the registry lock.
	Close func() error
	// StopAccepting, if set, makes the listener refuse new connections
	// while its live streams go on (a graceful shutdown).
	StopAccepting func()
}

// Label names l in `p2ptun status` and in metrics' name label: its Name,
// or, for a tunnel made at runtime without one, what it is: "listen
// PROTOCOL" (a node serves a protocol once) or "forward PROTOCOL
// LISTEN-ADDRESS" (one forward per local address). Either stays the same
// across restarts, unlike the ID.
func (l Listener) Label() string {
	switch {
	case l.Name != "":
		return l.Name
	case l.Kind == KindForward:
		return string(l.Kind) + " " + l.Protocol + " " + l.ListenAddress
	}
	return string(l.Kind) + " " + l.Protocol
}

// ListenerPeer is one peer of a forward with several, and its state.
type ListenerPeer struct {
	Peer  string
	Up    bool
	Error string        // why it went down last; "" if it never did
	RTT   time.Duration // measured round-trip time; 0 if not yet measured
}

// key is what makes two listeners conflict: one handler per protocol, one
// forward per local address.
func (l *Listener) key() string {
	if l.Kind == KindListen {
		return "listen " + l.Protocol
	}
	return "forward " + l.ListenAddress
}

// Listeners is the listener registry. The zero value is ready to use.
type Listeners struct {
	mu      sync.Mutex
	nextID  uint64
	entries map[uint64]*Listener
	keys    map[string]uint64
	hooks   ListenerHooks
}

// ListenerHooks are told when a listener comes up (Commit) and when it has
// been closed (CloseMatching); any field may be nil. They get snapshots and
// run outside the registry's lock.
type ListenerHooks struct {
	Up, Down func(Listener)
}

// SetHooks installs h; call it before the first listener is committed.
func (r *Listeners) SetHooks(h ListenerHooks) {
	r.mu.Lock()
	r.hooks = h
	r.mu.Unlock()
}

// Reserve claims l's key before its owner starts it, so that two
// concurrent requests for the same protocol or address cannot both
// succeed. It sets l.ID. The caller must follow with Commit or Release.
func (r *Listeners) Reserve(l *Listener) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.entries == nil {
		r.entries = make(map[uint64]*Listener)
		r.keys = make(map[string]uint64)
	}
	k := l.key()
	if _, ok := r.keys[k]; ok {
		if l.Kind == KindListen {
			return fmt.Errorf("a listener for protocol %s %w", l.Protocol, ErrExists)
		}
		return fmt.Errorf("a forward on %s %w", l.ListenAddress, ErrExists)
	}
	r.nextID++
	l.ID = r.nextID
	r.keys[k] = l.ID
	return nil
}

// Commit makes a reserved listener visible to List and CloseMatching.
func (r *Listeners) Commit(l *Listener) {
	r.mu.Lock()
	r.entries[l.ID] = l
	up := r.hooks.Up
	snap := snapshot(l)
	r.mu.Unlock()
	if up != nil {
		up(snap)
	}
}

func snapshot(l *Listener) Listener {
	c := *l
	c.AllowedPeers = slices.Clone(l.AllowedPeers)
	c.Close, c.StopAccepting = nil, nil
	if l.PeerStates != nil {
		c.Peers, c.PeerStates = l.PeerStates(), nil
	}
	return c
}

// Has reports whether a committed listener has id.
func (r *Listeners) Has(id uint64) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	_, ok := r.entries[id]
	return ok
}

// StopAccepting makes every committed listener refuse new connections,
// leaving live streams alone.
func (r *Listeners) StopAccepting() {
	r.mu.Lock()
	var stops []func()
	for _, l := range r.entries {
		if l.StopAccepting != nil {
			stops = append(stops, l.StopAccepting)
		}
	}
	r.mu.Unlock()
	for _, stop := range stops {
		stop()
	}
}

// Release drops a reservation whose start failed.
func (r *Listeners) Release(l *Listener) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.keys, l.key())
	delete(r.entries, l.ID)
}

// AllowPeer adds p to the AllowedPeers of the committed listener id, if it
// is not there yet. It returns ErrNotFound if no such listener is
// committed (it was closed, or never opened).
func (r *Listeners) AllowPeer(id uint64, p string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	l, ok := r.entries[id]
	if !ok {
		return fmt.Errorf("%w: listener %d is closed", ErrNotFound, id)
	}
	if !slices.Contains(l.AllowedPeers, p) {
		l.AllowedPeers = append(l.AllowedPeers, p)
	}
	return nil
}

// List returns a snapshot of the committed listeners ordered by ID.
func (r *Listeners) List() []Listener {
	r.mu.Lock()
	out := make([]Listener, 0, len(r.entries))
	for _, l := range r.entries {
		out = append(out, snapshot(l))
	}
	r.mu.Unlock()
	slices.SortFunc(out, func(a, b Listener) int { return cmpID(a.ID, b.ID) })
	return out
}

// CloseMatching removes every committed listener for which match returns
// true and closes them, outside the lock, in ID order. It returns how many
// were closed and the first close error; ErrNotFound if none matched.
func (r *Listeners) CloseMatching(match func(*Listener) bool) (int, error) {
	r.mu.Lock()
	var victims []*Listener
	for _, l := range r.entries {
		if match(l) {
			victims = append(victims, l)
		}
	}
	for _, l := range victims {
		delete(r.entries, l.ID)
		delete(r.keys, l.key())
	}
	down := r.hooks.Down
	r.mu.Unlock()
	if len(victims) == 0 {
		return 0, fmt.Errorf("%w: no listener or forward matches; see `p2ptun ls`", ErrNotFound)
	}
	slices.SortFunc(victims, func(a, b *Listener) int { return cmpID(a.ID, b.ID) })
	var first error
	for _, l := range victims {
		if err := l.Close(); err != nil && first == nil {
			first = err
		}
		if down != nil {
			down(snapshot(l))
		}
	}
	return len(victims), first
}

func cmpID(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
