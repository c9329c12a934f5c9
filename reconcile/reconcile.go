package reconcile

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/p2ptun/p2ptun/config"
	"github.com/p2ptun/p2ptun/registry"
	"github.com/p2ptun/p2ptun/spec"
)

// Tunnel states, the State of a Status.
const (
	Starting = "starting" // first attempt under way
	Up       = "up"
	Failed   = "failed" // the last attempt failed; retried with backoff
	Closed   = "closed" // closed at runtime with `p2ptun close`; back on reload
)

// Status is the state of one config-file tunnel.
type Status struct {
	Name       string // the tunnel's name, or a label saying what it does
	Kind       string // "listen" or "forward"
	Protocol   string
	Line       int    `json:",omitempty"` // where its table starts in the config file
	State      string // starting, up, failed or closed
	Error      string `json:",omitempty"` // why the last attempt failed
	ListenerID uint64 `json:",omitempty"` // its entry in `p2ptun ls`, when up
	// Attempts counts the failed attempts since it last started; NextRetry
	// is when the next one is due (zero when none is: it is up, or it
	// failed with an error no retry can fix).
	Attempts  int       `json:",omitempty"`
	NextRetry time.Time `json:",omitzero"`
	// Err is the last attempt's error, for callers in this process.
	Err error `json:"-"`
}

// Runner is what a Set drives: the node.
type Runner interface {
	// Open starts the tunnel of s, a listen or forward spec (never one to
	// save), and returns its record in the listener registry.
	Open(ctx context.Context, s spec.Spec) (registry.Listener, error)
	// Has reports whether listener id is still open.
	Has(id uint64) bool
	// Close closes listener id, and its streams, if it is open.
	Close(id uint64)
}

// DefaultRetryMax caps the backoff between attempts to start a failed
// tunnel when Config.RetryMax is zero.
const DefaultRetryMax = 30 * time.Second

// Config configures a Set.
type Config struct {
	// Runner opens and closes the tunnels; required.
	Runner Runner
	// Logger receives failed attempts; default slog.Default().
	Logger *slog.Logger
	// Failed, if set, is told of every failed attempt to start a tunnel.
	Failed func(Status)
	// Permanent says which errors no retry can fix: the tunnel is left
	// failed. Default: those wrapping spec.ErrInvalid.
	Permanent func(error) bool
	// SaveListen and SaveForward append a tunnel to the config file for
	// Save; nil refuses --save.
	SaveListen  func(config.ListenTunnel) error
	SaveForward func(config.ForwardTunnel) error
	// RetryMin and RetryMax bound the backoff between attempts, doubling
	// from RetryMin; defaults one second and DefaultRetryMax.
	RetryMin, RetryMax time.Duration
}

// managed is a config tunnel the Set keeps running.
type managed struct {
	t      tunnel
	cancel context.CancelFunc // stops the start/retry loop
	done   chan struct{}      // closed when the loop has returned
	first  chan struct{}      // closed when the first attempt has finished
	once   sync.Once

	mu         sync.Mutex // guards t.line (a reload moves it) and the fields below
	state      string
	err        error
	listenerID uint64
	attempts   int       // failed attempts since the loop started
	nextRetry  time.Time // when the next attempt is due; zero if none is
}

// line is where the tunnel's table starts in its file now.
func (m *managed) line() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.t.line
}

// set records an attempt's outcome; next is when the next attempt is due
// (zero if none is).
func (m *managed) set(state string, err error, id uint64, next time.Time) {
	m.mu.Lock()
	m.state, m.err, m.listenerID, m.nextRetry = state, err, id, next
	if err != nil {
		m.attempts++
	}
	m.mu.Unlock()
	m.tried()
}

func (m *managed) tried() { m.once.Do(func() { close(m.first) }) }

// Set holds a node's config tunnels. Create it with New; Close stops its
// retries.
type Set struct {
	cfg    Config
	ctx    context.Context // lifetime of the start/retry loops
	cancel context.CancelFunc
	wg     sync.WaitGroup // the start/retry loops

	applyMu sync.Mutex // serialises Apply and Save
	mu      sync.Mutex
	closed  bool
	m       map[string]*managed
	order   []string // keys in config order, for Status
}

// New returns an empty Set.
func New(cfg Config) *Set {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Permanent == nil {
		cfg.Permanent = func(err error) bool { return errors.Is(err, spec.ErrInvalid) }
	}
	if cfg.RetryMin <= 0 {
		cfg.RetryMin = time.Second
	}
	if cfg.RetryMax <= 0 {
		cfg.RetryMax = DefaultRetryMax
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Set{cfg: cfg, ctx: ctx, cancel: cancel, m: make(map[string]*managed)}
}

// Close stops every start/retry loop and waits for them; it leaves the
// tunnels that are up to their owner. It is idempotent.
func (r *Set) Close() {
	r.mu.Lock()
	r.closed = true
	r.mu.Unlock()
	r.cancel()
	r.wg.Wait()
}

// start registers t and starts its start/retry loop, unless the Set is
// closed: then t is left failed with net.ErrClosed.
func (r *Set) start(t tunnel) *managed {
	ctx, cancel := context.WithCancel(r.ctx)
	m := &managed{t: t, cancel: cancel, done: make(chan struct{}), first: make(chan struct{}), state: Starting}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.m[t.key] = m
	if r.closed {
		close(m.done)
		m.state, m.err = Failed, net.ErrClosed
		m.tried()
		return m
	}
	r.wg.Go(func() { r.run(ctx, m) })
	return m
}

// run tries to start m until it is up, with backoff between attempts; it
// gives up only on errors no retry can fix.
func (r *Set) run(ctx context.Context, m *managed) {
	defer close(m.done)
	defer m.tried()
	backoff := r.cfg.RetryMin
	for {
		l, err := r.cfg.Runner.Open(ctx, m.t.spec)
		if err == nil {
			m.set(Up, nil, l.ID, time.Time{})
			return
		}
		if ctx.Err() != nil {
			return
		}
		permanent := r.cfg.Permanent(err)
		var next time.Time
		if !permanent {
			next = time.Now().Add(backoff)
		}
		m.set(Failed, err, 0, next)
		r.cfg.Logger.Warn("config tunnel failed to start; retrying", "tunnel", m.t.label, "line", m.line(), "err", err, "retry_in", backoff.String())
		if r.cfg.Failed != nil {
			r.cfg.Failed(r.status(m))
		}
		if permanent {
			return
		}
		select {
		case <-time.After(backoff):
		case <-ctx.Done():
			return
		}
		backoff = min(2*backoff, r.cfg.RetryMax)
	}
}

// stop ends m's loop and closes its listener if it is up.
func (r *Set) stop(m *managed) {
	m.cancel()
	<-m.done
	m.mu.Lock()
	id := m.listenerID
	m.mu.Unlock()
	if id != 0 {
		r.cfg.Runner.Close(id)
	}
}

// status reports m's state; an up tunnel whose listener is gone was
// closed at runtime.
func (r *Set) status(m *managed) Status {
	m.mu.Lock()
	st := Status{
		Name: m.t.label, Kind: string(m.t.spec.Kind), Protocol: m.t.proto, Line: m.t.line,
		State: m.state, ListenerID: m.listenerID, Attempts: m.attempts, NextRetry: m.nextRetry,
	}
	if m.err != nil {
		st.Error, st.Err = m.err.Error(), m.err
	}
	m.mu.Unlock()
	if st.State == Up && !r.cfg.Runner.Has(st.ListenerID) {
		st.State, st.ListenerID = Closed, 0
	}
	return st
}

// Status reports the config tunnels in config order.
func (r *Set) Status() []Status {
	r.mu.Lock()
	ms := make([]*managed, 0, len(r.order))
	for _, k := range r.order {
		if m, ok := r.m[k]; ok {
			ms = append(ms, m)
		}
	}
	r.mu.Unlock()
	out := make([]Status, 0, len(ms))
	for _, m := range ms {
		out = append(out, r.status(m))
	}
	return out
}
