package reconcile

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"

	"github.com/p2ptun/p2ptun/config"
	"github.com/p2ptun/p2ptun/registry"
	"github.com/p2ptun/p2ptun/spec"
)

// Result says what Apply changed.
type Result struct {
	Added, Removed, Unchanged, Restarted []string
	// Failed are the added (or restarted) tunnels whose first attempt
	// failed; they are retried with backoff.
	Failed []Status
}

// tunnel is one tunnel from the config file (or one saved to it).
type tunnel struct {
	key   string // identity for diffs: the table's content
	label string
	line  int
	proto string
	spec  spec.Spec
}

// listenTunnel is the tunnel a [[listen]] table starts: its Spec, which
// config.Parse set, or, for a table built in code, its parse.
func listenTunnel(t config.ListenTunnel, a spec.Aliases) (tunnel, error) {
	return newTunnel(struct{ L config.ListenTunnel }{t}, t.Label(), t.Line, t.Protocol, t.Spec,
		func() (spec.Spec, error) { return spec.ParseListen(t.RequestWith(a)) })
}

// forwardTunnel is the tunnel a [[forward]] table starts, like
// listenTunnel.
func forwardTunnel(t config.ForwardTunnel, a spec.Aliases) (tunnel, error) {
	return newTunnel(struct{ F config.ForwardTunnel }{t}, t.Label(), t.Line, t.Protocol, t.Spec,
		func() (spec.Spec, error) { return spec.ParseForward(t.RequestWith(a)) })
}

// newTunnel is the tunnel of a table: keyed by table's content (its JSON,
// which leaves out Line and Spec) and the peers its names resolved to (so
// a reload after a name changed restarts it), running s, or parse's spec
// when the table was built in code and s is empty.
func newTunnel(table any, label string, line int, proto string, s spec.Spec, parse func() (spec.Spec, error)) (tunnel, error) {
	t := tunnel{label: label, line: line, proto: proto, spec: s}
	var err error
	if t.spec.Kind == "" {
		t.spec, err = parse()
	}
	key, _ := json.Marshal(struct {
		Table any
		Peers []string `json:",omitempty"`
	}{table, resolved(t.spec)})
	t.key = string(key)
	return t, err
}

// resolved are the peer IDs of s, as its names resolved.
func resolved(s spec.Spec) []string {
	var out []string
	if s.Peer.ID != "" {
		out = append(out, s.Peer.ID.String())
	}
	for _, pi := range s.Peers {
		out = append(out, pi.ID.String())
	}
	for _, id := range s.Allow {
		out = append(out, id.String())
	}
	return out
}

// tunnels parses a config's tunnels with the parsers the commands use.
// Errors name the file, the table's line and the tunnel, then the
// reason, and wrap config.ErrInvalid.
func tunnels(file string, c config.Config) ([]tunnel, error) {
	var out []tunnel
	bad := func(t tunnel, err error) error {
		where := file
		if t.line > 0 {
			where = fmt.Sprintf("%s:%d", file, t.line)
		}
		return fmt.Errorf("%w: %s: %s: %s", config.ErrInvalid, where, t.label, spec.Reason(err))
	}
	for _, t := range c.Listen {
		ct, err := listenTunnel(t, c.Aliases())
		if err != nil {
			return nil, bad(ct, err)
		}
		out = append(out, ct)
	}
	for _, t := range c.Forward {
		ct, err := forwardTunnel(t, c.Aliases())
		if err != nil {
			return nil, bad(ct, err)
		}
		out = append(out, ct)
	}
	return out, nil
}

// Apply makes the Set's tunnels those of c, read from file: it checks
// all of them first and changes nothing if one is invalid; then it
// closes the tunnels no longer in c, leaves unchanged ones (and their
// streams) alone, restarts any that were closed at runtime, and starts
// the new ones. It waits for each new tunnel's first attempt; one that
// fails is retried in the background with backoff, and reported in the
// result. Tunnels made at runtime without --save are never touched.
func (r *Set) Apply(ctx context.Context, file string, c config.Config) (Result, error) {
	want, err := tunnels(file, c)
	if err != nil {
		return Result{}, err
	}
	r.applyMu.Lock()
	defer r.applyMu.Unlock()

	var res Result
	wanted := make(map[string]bool, len(want))
	for _, t := range want {
		wanted[t.key] = true
	}
	r.mu.Lock()
	var gone []*managed
	for k, m := range r.m {
		if !wanted[k] {
			gone = append(gone, m)
			delete(r.m, k)
		}
	}
	r.mu.Unlock()
	slices.SortFunc(gone, func(a, b *managed) int { return a.t.line - b.t.line })
	for _, m := range gone {
		r.stop(m)
		res.Removed = append(res.Removed, m.t.label)
	}

	var started []*managed
	var order []string
	for _, t := range want {
		order = append(order, t.key)
		r.mu.Lock()
		m, ok := r.m[t.key]
		r.mu.Unlock()
		if ok {
			m.mu.Lock()       // status reads the line
			m.t.line = t.line // the table may have moved in the file
			m.mu.Unlock()
			if r.status(m).State == Closed {
				r.stop(m)
				res.Restarted = append(res.Restarted, t.label)
				started = append(started, r.start(t))
				continue
			}
			res.Unchanged = append(res.Unchanged, t.label)
			continue
		}
		res.Added = append(res.Added, t.label)
		started = append(started, r.start(t))
	}
	r.mu.Lock()
	r.order = order
	r.mu.Unlock()
	for _, m := range started {
		select {
		case <-m.first:
		case <-ctx.Done():
			return res, ctx.Err()
		}
		if st := r.status(m); st.State == Failed {
			res.Failed = append(res.Failed, st)
		}
	}
	return res, nil
}

// Save opens s, a listen or forward spec given --save, as the config
// tunnel it is saved as (which a reload of that file leaves alone), then
// appends it to the config file. If it cannot be saved, it is closed
// again and forgotten. A forward asked for port 0 is saved with the port
// it got, so that a restart or a reload binds the same one.
func (r *Set) Save(ctx context.Context, s spec.Spec) (registry.Listener, error) {
	if s.Kind == spec.KindListen && r.cfg.SaveListen == nil || s.Kind == spec.KindForward && r.cfg.SaveForward == nil {
		return registry.Listener{}, fmt.Errorf("%w: --save needs a daemon with a config file; this one is --ephemeral", spec.ErrInvalid)
	}
	r.applyMu.Lock()
	defer r.applyMu.Unlock()
	var (
		t    tunnel
		save func() error
		l    registry.Listener
		err  error
	)
	// The table is parsed with the names of peers s was parsed with (the
	// daemon's when it was asked), which the file saved beside it.
	switch s.Kind {
	case spec.KindListen:
		table := config.ListenTable(s.Request)
		if t, err = listenTunnel(table, s.Names); err != nil {
			return registry.Listener{}, err
		}
		if l, err = r.cfg.Runner.Open(ctx, t.spec); err != nil {
			return registry.Listener{}, err
		}
		save = func() error { return r.cfg.SaveListen(table) }
	case spec.KindForward:
		// The table keeps the peer and its addresses but never an
		// invite's secret: once redeemed, the peer is on the listener's
		// allowlist.
		table := config.ForwardTable(s.Request)
		if t, err = forwardTunnel(table, s.Names); err != nil {
			return registry.Listener{}, err
		}
		run := t.spec
		run.Invite = s.Invite
		if l, err = r.cfg.Runner.Open(ctx, run); err != nil {
			return registry.Listener{}, err
		}
		table.Listen = spec.BoundListen(table.Listen, l.ListenAddress)
		t, err = forwardTunnel(table, s.Names)
		save = func() error { return r.cfg.SaveForward(table) }
	default:
		return registry.Listener{}, fmt.Errorf("%w: a %q tunnel cannot be saved", spec.ErrInvalid, s.Kind)
	}
	if err == nil {
		r.adopt(t, l.ID)
		if err = save(); err != nil {
			r.disown(t)
		}
	}
	if err != nil {
		r.cfg.Runner.Close(l.ID)
		return registry.Listener{}, fmt.Errorf("tunnel not saved, and closed again: %w", err)
	}
	return l, nil
}

// adopt records a tunnel made at runtime with --save as a config tunnel,
// so that a reload of the file it was saved to leaves it alone.
func (r *Set) adopt(t tunnel, id uint64) {
	m := &managed{t: t, cancel: func() {}, done: make(chan struct{}), first: make(chan struct{}), state: Up, listenerID: id}
	close(m.done)
	m.tried()
	r.mu.Lock()
	r.m[t.key] = m
	r.order = append(r.order, t.key)
	r.mu.Unlock()
}

// disown forgets an adopted tunnel whose save failed.
func (r *Set) disown(t tunnel) {
	r.mu.Lock()
	delete(r.m, t.key)
	r.order = slices.DeleteFunc(r.order, func(k string) bool { return k == t.key })
	r.mu.Unlock()
}
