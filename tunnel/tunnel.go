package tunnel

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/p2ptun/p2ptun/registry"
	"github.com/p2ptun/p2ptun/streams"
)

// Kind is how one kind of tunnel accepts connections. A Tunnel calls its
// methods; the kind hands each connection it accepts to Tunnel.Serve.
type Kind interface {
	// Bind claims what the tunnel accepts on, without accepting yet (a
	// listening socket binds its port, so that a port 0 becomes a real
	// one); a kind with nothing to claim returns nil. Start calls it
	// before Config.Register.
	Bind() error
	// Accept starts accepting and returns without blocking. A kind that
	// accepts on a goroutine of its own (an accept loop) starts it with
	// Tunnel.Go, so that Close waits for it; a kind whose connections
	// arrive on someone else's goroutines (a libp2p stream handler)
	// registers there.
	Accept(t *Tunnel) error
	// StopAccepting stops taking new connections, if the kind can (a
	// listening socket unbinds); the Tunnel refuses the ones that still
	// arrive. Live connections go on.
	StopAccepting()
	// Close stops accepting for good (unbinds, removes a handler). The
	// Tunnel calls it once, before it cancels its lifetime context and
	// waits for every connection to end.
	Close() error
}

// Opener opens the far end of one accepted connection: it is what a kind
// dials. It runs on the connection's goroutine and is bounded by ctx, the
// tunnel's lifetime. On success the Link's ends belong to the Tunnel. On
// failure the Opener has already refused the connection its own way (a
// stream reset with a cause, a TCP RST) and logged it; a *Failure error is
// reported to the stream registry's Failed hook.
type Opener func(ctx context.Context) (*Link, error)

// Link is a connection ready to bridge.
type Link struct {
	// Remote is the libp2p stream: bytes read from it count in, bytes
	// written to it count out.
	Remote streams.HalfCloser
	// Local is the local end: a TCP client, a target, an API connection.
	Local streams.HalfCloser
	// Record holds the kind's part of the stream's record: OriginAddress,
	// TargetAddress, Peer, Path, and BytesOut if bytes went out before
	// the bridge (a forward's cold stream: its client's first bytes). The
	// Tunnel fills in the rest.
	Record registry.Stream
	// Attrs name the connection in the debug logs ("peer", …).
	Attrs []any
	// Ended, if set, is called with the bridge's error once both
	// directions have ended, before the record is removed.
	Ended func(err error)
}

// Failure is an Opener's error for a connection refused or not set up
// with a cause the registry records (registry.Failure.Cause).
type Failure struct {
	Peer  string
	Cause string
	Err   error // may be nil: a refusal needs no error
	// Destination is the host:port a SOCKS client asked for, if the
	// failure came after its request was read; the record's Destination.
	Destination string
}

func (f *Failure) Error() string {
	if f.Err == nil {
		return f.Cause
	}
	return f.Cause + ": " + f.Err.Error()
}

func (f *Failure) Unwrap() error { return f.Err }

// Config describes one tunnel.
type Config struct {
	// Kind and Protocol go in every stream record and failure.
	Kind     registry.Kind
	Protocol string
	// Streams records each live connection; required.
	Streams *registry.Streams
	// Logger receives the per-connection debug logs; default
	// slog.Default().
	Logger *slog.Logger
	// ListenerID is stored in each record: the tunnel's ID in the
	// listener registry (0 for none). Set it here, or let Register
	// return it.
	ListenerID uint64
	// Register, if set, is called by Start after the kind has bound and
	// before it accepts: it registers the tunnel (in the listener
	// registry) and returns the ID every record carries, so that no
	// connection is served before the tunnel is registered. Its error
	// fails Start.
	Register func() (id uint64, err error)
}

// Tunnel runs one tunnel's lifecycle. Create it with New, then Start;
// Close stops accepting, aborts every live connection and waits for them.
type Tunnel struct {
	cfg    Config
	kind   Kind
	ctx    context.Context // lifetime, cancelled by Close
	cancel context.CancelFunc

	mu       sync.Mutex
	started  bool
	draining bool // StopAccepting was called: new connections are refused
	closed   bool
	wg       sync.WaitGroup // the kind's goroutines and one per connection
}

// New returns a tunnel of kind k that is not yet accepting. k may be nil
// for a tunnel whose connections the caller hands to Serve itself (a pipe).
func New(cfg Config, k Kind) (*Tunnel, error) {
	if cfg.Streams == nil {
		return nil, errors.New("tunnel: no stream registry")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Tunnel{cfg: cfg, kind: k, ctx: ctx, cancel: cancel}, nil
}

// Context is the tunnel's lifetime: it is cancelled by Close.
func (t *Tunnel) Context() context.Context { return t.ctx }

// setListenerID sets the ID stored in every record: Start's, before the
// kind accepts, so that no connection is recorded under another.
func (t *Tunnel) setListenerID(id uint64) {
	t.mu.Lock()
	t.cfg.ListenerID = id
	t.mu.Unlock()
}

// ListenerID returns the ID stored in every record.
func (t *Tunnel) ListenerID() uint64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.cfg.ListenerID
}

// Start binds the kind, registers the tunnel (Config.Register), then makes
// the kind accept. After Close it returns net.ErrClosed. On error, Close
// undoes what was done.
func (t *Tunnel) Start() error {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return net.ErrClosed
	}
	if t.started {
		t.mu.Unlock()
		return errors.New("tunnel: already started")
	}
	t.started = true
	t.mu.Unlock()
	if t.kind == nil {
		return nil
	}
	if err := t.kind.Bind(); err != nil {
		return err
	}
	if t.cfg.Register != nil {
		id, err := t.cfg.Register()
		if err != nil {
			return err
		}
		t.setListenerID(id)
	}
	return t.kind.Accept(t)
}

// StopAccepting refuses new connections from now on and leaves live ones
// running (a graceful shutdown drains them).
func (t *Tunnel) StopAccepting() {
	t.mu.Lock()
	t.draining = true
	t.mu.Unlock()
	if t.kind != nil {
		t.kind.StopAccepting()
	}
}

// Close stops the kind accepting, aborts every live connection and waits
// for every goroutine of the tunnel to return. It is idempotent; it
// returns the kind's Close error.
func (t *Tunnel) Close() error {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return nil
	}
	t.closed = true
	t.mu.Unlock()
	var err error
	if t.kind != nil {
		err = t.kind.Close()
	}
	t.cancel()
	t.wg.Wait()
	return err
}

// Drain stops accepting and waits for the live connections to end. If
// ctx ends first, it aborts them, waits all the same, and returns ctx's
// error. Close is still needed after it, to stop the kind.
func (t *Tunnel) Drain(ctx context.Context) error {
	t.StopAccepting()
	stop := context.AfterFunc(ctx, t.cancel)
	t.wg.Wait()
	if !stop() {
		return ctx.Err()
	}
	return nil
}

// enter counts a goroutine in unless the tunnel is closed or draining.
func (t *Tunnel) enter() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed || t.draining {
		return false
	}
	t.wg.Add(1)
	return true
}

// Go runs f on a goroutine that Close waits for, unless the tunnel no
// longer accepts; it reports whether it did.
func (t *Tunnel) Go(f func()) bool {
	if !t.enter() {
		return false
	}
	go func() {
		defer t.wg.Done()
		f()
	}()
	return true
}

// Serve runs one accepted connection through the lifecycle, inline:
// open the far end, record it in the stream registry, start the bridge,
// and return; the bridge's goroutines finish it (count, tell the
// registry's hooks, remove the record) and Close waits for them. arrived
// is when the connection came, for the record's setup time.
//
// Serve returns false, without calling open, when the tunnel no longer
// accepts (StopAccepting or Close): the caller refuses the connection its
// own way.
func (t *Tunnel) Serve(arrived time.Time, open Opener) bool {
	if !t.enter() {
		return false
	}
	bridged := false
	defer func() {
		if !bridged {
			t.wg.Done()
		}
	}()
	l, err := open(t.ctx)
	if err != nil {
		var f *Failure
		if errors.As(err, &f) {
			t.cfg.Streams.Fail(registry.Failure{
				ListenerID: t.ListenerID(), Kind: t.cfg.Kind, Protocol: t.cfg.Protocol,
				Peer: f.Peer, Cause: f.Cause, Err: f.Err, Destination: f.Destination,
			})
		}
		return true
	}
	rec := &l.Record
	rec.ListenerID = t.ListenerID()
	rec.Kind, rec.Protocol = t.cfg.Kind, t.cfg.Protocol
	rec.OpenedAt = time.Now()
	rec.Setup = rec.OpenedAt.Sub(arrived)
	rec.BytesIn = new(atomic.Int64)
	if rec.BytesOut == nil {
		rec.BytesOut = new(atomic.Int64)
	}
	p := streams.New(l.Remote, l.Local, streams.Counters{AtoB: rec.BytesIn, BtoA: rec.BytesOut})
	id, finish := t.cfg.Streams.Open(t.ctx, rec, p.Abort)
	// The per-connection lines are Debug: build their logger only when
	// they are written, not for every connection.
	log := t.cfg.Logger
	if log.Enabled(t.ctx, slog.LevelDebug) {
		log = log.With(l.Attrs...)
	}
	log.Debug("stream open", "stream", id)
	// The pipe's goroutines outlive this one and take over its place in
	// t.wg.
	bridged = true
	p.Start(func(nin, nout int64, err error) {
		defer t.wg.Done()
		log.Debug("stream ended", "stream", id, "in", nin, "out", nout, "err", err)
		if l.Ended != nil {
			l.Ended(err)
		}
		finish(err)
	})
	return true
}
