package node

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/p2ptun/p2ptun/config"
	"github.com/p2ptun/p2ptun/registry"
	"github.com/p2ptun/p2ptun/spec"
)

// Tunnel states, the State of a TunnelStatus.
const (
	TunnelStarting = "starting" // first attempt under way
	TunnelUp       = "up"
	TunnelFailed   = "failed" // the last attempt failed; retried with backoff
	TunnelClosed   = "closed" // closed at runtime with `p2ptun close`; back on reload
)

// TunnelStatus is the state of one config-file tunnel.
type TunnelStatus struct {
	Name       string // the tunnel's name, or a label saying what it does
	Kind       string // "listen" or "forward"
	Protocol   string
	Line       int    `json:",omitempty"` // where its table starts in the config file
	State      string // starting, up, failed or closed
	Error      string `json:",omitempty"` // why the last attempt failed
	ListenerID uint64 `json:",omitempty"` // its entry in `p2ptun ls`, when up
	// Err is the last attempt's error, for callers in this process.
	Err error `json:"-"`
}

// ApplyResult says what ApplyTunnels changed.
type ApplyResult struct {
	Added, Removed, Unchanged, Restarted []string
	// Failed are the added (or restarted) tunnels whose first attempt
	// failed; they are retried with backoff.
	Failed []TunnelStatus
}

// retryMax caps the backoff between attempts to start a failed tunnel.
const retryMax = 30 * time.Second

// configTunnel is one tunnel from the config file (or one saved to it).
type configTunnel struct {
	key   string // identity for diffs: the table's content
	label string
	line  int
	proto string
	spec  spec.Spec
}

// managed is a config tunnel the node keeps running.
type managed struct {
	spec   configTunnel
	cancel context.CancelFunc // stops the start/retry loop
	done   chan struct{}      // closed when the loop has returned
	first  chan struct{}      // closed when the first attempt has finished
	once   sync.Once

	mu         sync.Mutex // guards spec.line (a reload moves it) and the fields below
	state      string
	err        error
	listenerID uint64
}

// line is where the tunnel's table starts in its file now.
func (m *managed) line() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.spec.line
}

func (m *managed) set(state string, err error, id uint64) {
	m.mu.Lock()
	m.state, m.err, m.listenerID = state, err, id
	m.mu.Unlock()
	m.tried()
}

func (m *managed) tried() { m.once.Do(func() { close(m.first) }) }

// tunnelSet holds the config tunnels; applyMu serialises changes to it.
type tunnelSet struct {
	applyMu sync.Mutex
	mu      sync.Mutex
	m       map[string]*managed
	order   []string // keys in config order, for Tunnels
}

// kind is the tunnel's kind: its spec's, which registry spells the same.
func (c configTunnel) kind() registry.Kind { return registry.Kind(c.spec.Kind) }

// listenTunnel is the tunnel a [[listen]] table starts: its Spec, which
// config.Parse set, or, for a table built in code, its parse.
func listenTunnel(t config.ListenTunnel) (configTunnel, error) {
	key, _ := json.Marshal(struct{ L config.ListenTunnel }{t}) // without Line and Spec
	ct := configTunnel{key: string(key), label: t.Label(), line: t.Line, proto: t.Protocol, spec: t.Spec}
	var err error
	if ct.spec.Kind == "" {
		ct.spec, err = spec.ParseListen(t.Request())
	}
	return ct, err
}

// forwardTunnel is the tunnel a [[forward]] table starts, like
// listenTunnel.
func forwardTunnel(t config.ForwardTunnel) (configTunnel, error) {
	key, _ := json.Marshal(struct{ F config.ForwardTunnel }{t}) // without Line and Spec
	ct := configTunnel{key: string(key), label: t.Label(), line: t.Line, proto: t.Protocol, spec: t.Spec}
	var err error
	if ct.spec.Kind == "" {
		ct.spec, err = spec.ParseForward(t.Request())
	}
	return ct, err
}

// specs parses a config's tunnels with the parsers the commands use.
// Errors name the file, the table's line and the tunnel, then the
// reason, and wrap config.ErrInvalid.
func specs(file string, c config.Config) ([]configTunnel, error) {
	var out []configTunnel
	bad := func(t configTunnel, err error) error {
		where := file
		if t.line > 0 {
			where = fmt.Sprintf("%s:%d", file, t.line)
		}
		return fmt.Errorf("%w: %s: %s: %s", config.ErrInvalid, where, t.label, spec.Reason(err))
	}
	for _, t := range c.Listen {
		ct, err := listenTunnel(t)
		if err != nil {
			return nil, bad(ct, err)
		}
		out = append(out, ct)
	}
	for _, t := range c.Forward {
		ct, err := forwardTunnel(t)
		if err != nil {
			return nil, bad(ct, err)
		}
		out = append(out, ct)
	}
	return out, nil
}

// ApplyTunnels makes the node's config tunnels those of c: it checks all
// of them first and changes nothing if one is invalid; then it closes the
// tunnels no longer in c, leaves unchanged ones (and their streams) alone,
// restarts any that were closed at runtime, and starts the new ones. It
// waits for each new tunnel's first attempt; one that fails is retried in
// the background with backoff, and reported in the result. Tunnels made at
// runtime without --save are never touched.
func (n *Node) ApplyTunnels(ctx context.Context, file string, c config.Config) (ApplyResult, error) {
	want, err := specs(file, c)
	if err != nil {
		return ApplyResult{}, err
	}
	if n.isClosed() {
		return ApplyResult{}, ErrClosed
	}
	ts := &n.tunnels
	ts.applyMu.Lock()
	defer ts.applyMu.Unlock()

	var res ApplyResult
	wanted := make(map[string]bool, len(want))
	for _, s := range want {
		wanted[s.key] = true
	}
	ts.mu.Lock()
	var gone []*managed
	for k, m := range ts.m {
		if !wanted[k] {
			gone = append(gone, m)
			delete(ts.m, k)
		}
	}
	ts.mu.Unlock()
	slices.SortFunc(gone, func(a, b *managed) int { return a.spec.line - b.spec.line })
	for _, m := range gone {
		n.stopTunnel(m)
		res.Removed = append(res.Removed, m.spec.label)
	}

	var started []*managed
	var order []string
	for _, s := range want {
		order = append(order, s.key)
		ts.mu.Lock()
		m, ok := ts.m[s.key]
		ts.mu.Unlock()
		if ok {
			m.mu.Lock()          // status reads the line
			m.spec.line = s.line // the table may have moved in the file
			m.mu.Unlock()
			if n.status(m).State == TunnelClosed {
				n.stopTunnel(m)
				res.Restarted = append(res.Restarted, s.label)
				started = append(started, n.startTunnel(s))
				continue
			}
			res.Unchanged = append(res.Unchanged, s.label)
			continue
		}
		res.Added = append(res.Added, s.label)
		started = append(started, n.startTunnel(s))
	}
	ts.mu.Lock()
	ts.order = order
	ts.mu.Unlock()
	for _, m := range started {
		select {
		case <-m.first:
		case <-ctx.Done():
			return res, ctx.Err()
		}
		if st := n.status(m); st.State == TunnelFailed {
			res.Failed = append(res.Failed, st)
		}
	}
	return res, nil
}

// startTunnel registers s and starts its start/retry loop.
func (n *Node) startTunnel(s configTunnel) *managed {
	ctx, cancel := context.WithCancel(n.bgCtx)
	m := &managed{spec: s, cancel: cancel, done: make(chan struct{}), first: make(chan struct{}), state: TunnelStarting}
	n.tunnels.mu.Lock()
	if n.tunnels.m == nil {
		n.tunnels.m = make(map[string]*managed)
	}
	n.tunnels.m[s.key] = m
	n.tunnels.mu.Unlock()
	n.bg.Go(func() { n.runTunnel(ctx, m) })
	return m
}

// runTunnel tries to start m until it is up, with backoff between
// attempts; it gives up only on errors no retry can fix.
func (n *Node) runTunnel(ctx context.Context, m *managed) {
	defer close(m.done)
	defer m.tried()
	backoff := time.Second
	for {
		var (
			l   registry.Listener
			err error
		)
		if m.spec.kind() == registry.KindListen {
			l, err = n.Listen(ctx, m.spec.spec)
		} else {
			l, err = n.Forward(ctx, m.spec.spec)
		}
		if err == nil {
			m.set(TunnelUp, nil, l.ID)
			return
		}
		if ctx.Err() != nil {
			return
		}
		m.set(TunnelFailed, err, 0)
		n.log.Warn("config tunnel failed to start; retrying", "tunnel", m.spec.label, "line", m.line(), "err", err, "retry_in", backoff.String())
		n.emit(Event{Type: EventTunnelFailed, Name: m.spec.label, Kind: string(m.spec.kind()), Protocol: m.spec.proto, Error: err.Error()})
		if errors.Is(err, ErrUsage) || errors.Is(err, ErrClosed) {
			return
		}
		select {
		case <-time.After(backoff):
		case <-ctx.Done():
			return
		}
		backoff = min(2*backoff, retryMax)
	}
}

// stopTunnel ends m's loop and closes its listener if it is up.
func (n *Node) stopTunnel(m *managed) {
	m.cancel()
	<-m.done
	m.mu.Lock()
	id := m.listenerID
	m.mu.Unlock()
	if id != 0 {
		_, _ = n.listeners.CloseMatching(func(l *registry.Listener) bool { return l.ID == id })
	}
}

// status reports m's state; an up tunnel whose listener is gone was closed
// at runtime.
func (n *Node) status(m *managed) TunnelStatus {
	m.mu.Lock()
	st := TunnelStatus{
		Name: m.spec.label, Kind: string(m.spec.kind()), Protocol: m.spec.proto, Line: m.spec.line,
		State: m.state, ListenerID: m.listenerID,
	}
	if m.err != nil {
		st.Error, st.Err = m.err.Error(), m.err
	}
	m.mu.Unlock()
	if st.State == TunnelUp && !n.listeners.Has(st.ListenerID) {
		st.State, st.ListenerID = TunnelClosed, 0
	}
	return st
}

// Tunnels reports the config tunnels in config order.
func (n *Node) Tunnels() []TunnelStatus {
	n.tunnels.mu.Lock()
	ms := make([]*managed, 0, len(n.tunnels.order))
	for _, k := range n.tunnels.order {
		if m, ok := n.tunnels.m[k]; ok {
			ms = append(ms, m)
		}
	}
	n.tunnels.mu.Unlock()
	out := make([]TunnelStatus, 0, len(ms))
	for _, m := range ms {
		out = append(out, n.status(m))
	}
	return out
}

// adopt records a tunnel made at runtime with --save as a config tunnel,
// so that a reload of the file it was saved to leaves it alone.
func (n *Node) adopt(s configTunnel, id uint64) {
	m := &managed{spec: s, cancel: func() {}, done: make(chan struct{}), first: make(chan struct{}), state: TunnelUp, listenerID: id}
	close(m.done)
	m.tried()
	n.tunnels.mu.Lock()
	if n.tunnels.m == nil {
		n.tunnels.m = make(map[string]*managed)
	}
	n.tunnels.m[s.key] = m
	n.tunnels.order = append(n.tunnels.order, s.key)
	n.tunnels.mu.Unlock()
}

// disown forgets an adopted tunnel whose save failed.
func (n *Node) disown(s configTunnel) {
	n.tunnels.mu.Lock()
	delete(n.tunnels.m, s.key)
	n.tunnels.order = slices.DeleteFunc(n.tunnels.order, func(k string) bool { return k == s.key })
	n.tunnels.mu.Unlock()
}

// SetAccess replaces the node-wide policy with the config file's lists
// (on reload), plus the run-only peers (Options.RunAllow and RunDeny), and
// closes the connections it no longer allows. It does not save the
// policy: it came from the file.
func (n *Node) SetAccess(allow, deny []peer.ID) {
	n.accessMu.Lock()
	defer n.accessMu.Unlock()
	n.filed.Reset(allow, deny)
	n.opts.Access.Reset(slices.Concat(allow, n.opts.RunAllow), slices.Concat(deny, n.opts.RunDeny))
	n.dropRefused()
}
