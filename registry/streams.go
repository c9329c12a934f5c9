package registry

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Stream describes one live bridged connection.
type Stream struct {
	ID            uint64
	ListenerID    uint64
	Kind          Kind // the kind of listener that made it
	Protocol      string
	OriginAddress string // who started it: the TCP client, or /p2p/<peer>
	TargetAddress string // where it goes: /p2p/<peer>, or the local target
	Peer          string
	Path          string // "direct" or "relayed via <relay>"
	Destination   string // the host:port a SOCKS stream's client asked for (forward --socks, listen --egress)
	OpenedAt      time.Time
	// Setup is how long the stream took to set up before bytes could
	// flow: opening the libp2p stream (forward) or dialing the target
	// (listen).
	Setup time.Duration

	// BytesIn counts bytes received from the peer and written to the
	// local TCP side; BytesOut the other direction. The bridge updates
	// them while it runs. Run allocates them when nil.
	BytesIn, BytesOut *atomic.Int64

	// Close aborts the stream. Done is closed once its bridge has returned
	// and it has been removed from the registry. Run sets both.
	Close func()
	Done  <-chan struct{}
}

// StreamInfo is a snapshot of a Stream with its counters read.
type StreamInfo struct {
	ID            uint64
	ListenerID    uint64
	Kind          Kind
	Protocol      string
	OriginAddress string
	TargetAddress string
	Peer          string
	Path          string
	OpenedAt      time.Time
	Setup         time.Duration
	BytesIn       int64
	BytesOut      int64
	Destination   string // a SOCKS stream's requested host:port
}

// Hooks are told about every stream's life. They run on the stream's own
// goroutine, so they must return quickly; any field may be nil.
type Hooks struct {
	// Opened is called once a stream is registered, before bytes flow.
	Opened func(StreamInfo)
	// Closed is called after a stream's bridge has returned, with its
	// final counters and the bridge's error (nil for a clean end).
	Closed func(StreamInfo, error)
	// Failed is called when a connection or stream was refused or could
	// not be set up, so no stream was registered.
	Failed func(Failure)
}

// Failure is a connection that never became a stream.
type Failure struct {
	ListenerID uint64
	Kind       Kind
	Protocol   string
	Peer       string
	// Cause is a short, stable label: a refusal's ("denied",
	// "rate_limited", "target_dial", "target_timeout", "closing",
	// "stream_limit"; see package refusal) or "stream_open",
	// "unreachable", "no_listener".
	Cause string
	Err   error
	// Destination is the host:port a SOCKS client asked for, when the
	// failure came after its request was read.
	Destination string
}

// Streams is the stream registry. The zero value is ready to use.
type Streams struct {
	mu      sync.Mutex
	nextID  uint64
	entries map[uint64]*Stream
	hooks   Hooks
	idle    chan struct{} // closed when the last stream ends; nil when none waits
}

// WaitIdle returns once no stream is live, or with ctx's error.
func (r *Streams) WaitIdle(ctx context.Context) error {
	r.mu.Lock()
	if len(r.entries) == 0 {
		r.mu.Unlock()
		return nil
	}
	if r.idle == nil {
		r.idle = make(chan struct{})
	}
	idle := r.idle
	r.mu.Unlock()
	select {
	case <-idle:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// SetHooks installs h; call it before the first stream runs.
func (r *Streams) SetHooks(h Hooks) {
	r.mu.Lock()
	r.hooks = h
	r.mu.Unlock()
}

// Fail reports a connection that could not become a stream to the
// Failed hook.
func (r *Streams) Fail(f Failure) {
	r.mu.Lock()
	h := r.hooks.Failed
	r.mu.Unlock()
	if h != nil {
		h(f)
	}
}

// Register adds s, assigns s.ID and returns it.
func (r *Streams) Register(s *Stream) uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.entries == nil {
		r.entries = make(map[uint64]*Stream)
	}
	r.nextID++
	s.ID = r.nextID
	r.entries[s.ID] = s
	return s.ID
}

// Open registers s, a stream served by goroutines of the caller's own
// (the tunnel's bridge), tells the Opened hook, and returns s's ID and the finish to
// call exactly once when the stream has ended, with its error. s.Close and
// the end of parent call abort, which must make the stream end; finish
// deregisters s, tells the Closed hook, and closes s.Done. Open fills in
// s.Close, s.Done and any nil counter.
//
// A held stream costs one registration with parent, not a context of its
// own (with ten thousand held, that is ~0.5 KiB each).
func (r *Streams) Open(parent context.Context, s *Stream, abort func()) (id uint64, finish func(error)) {
	stop := context.AfterFunc(parent, abort)
	done := make(chan struct{})
	s.Close, s.Done = abort, done
	if s.BytesIn == nil {
		s.BytesIn = new(atomic.Int64)
	}
	if s.BytesOut == nil {
		s.BytesOut = new(atomic.Int64)
	}
	id = r.Register(s)
	r.mu.Lock()
	hooks := r.hooks
	r.mu.Unlock()
	if hooks.Opened != nil {
		hooks.Opened(info(s))
	}
	return id, func(err error) {
		stop()
		r.Deregister(id)
		if hooks.Closed != nil {
			hooks.Closed(info(s), err)
		}
		close(done)
	}
}

func info(s *Stream) StreamInfo {
	return StreamInfo{
		ID: s.ID, ListenerID: s.ListenerID, Kind: s.Kind, Protocol: s.Protocol,
		OriginAddress: s.OriginAddress, TargetAddress: s.TargetAddress,
		Peer: s.Peer, Path: s.Path, OpenedAt: s.OpenedAt, Setup: s.Setup,
		BytesIn: load(s.BytesIn), BytesOut: load(s.BytesOut), Destination: s.Destination,
	}
}

// Deregister removes the stream with id; it is a no-op if it is gone.
func (r *Streams) Deregister(id uint64) {
	r.mu.Lock()
	delete(r.entries, id)
	if len(r.entries) == 0 && r.idle != nil {
		close(r.idle)
		r.idle = nil
	}
	r.mu.Unlock()
}

// List returns a snapshot of the live streams ordered by ID.
func (r *Streams) List() []StreamInfo {
	r.mu.Lock()
	out := make([]StreamInfo, 0, len(r.entries))
	for _, s := range r.entries {
		out = append(out, info(s))
	}
	r.mu.Unlock()
	slices.SortFunc(out, func(a, b StreamInfo) int { return cmpID(a.ID, b.ID) })
	return out
}

// Close aborts the stream with id and waits until it has ended or ctx is
// done. It returns ErrNotFound for an unknown id.
func (r *Streams) Close(ctx context.Context, id uint64) error {
	r.mu.Lock()
	s, ok := r.entries[id]
	r.mu.Unlock()
	if !ok {
		return fmt.Errorf("%w: no stream with ID %d", ErrNotFound, id)
	}
	return closeAndWait(ctx, []*Stream{s})
}

// CloseMatching aborts every stream for which match returns true and waits
// for them to end. It returns how many it closed.
func (r *Streams) CloseMatching(ctx context.Context, match func(*Stream) bool) (int, error) {
	r.mu.Lock()
	var victims []*Stream
	for _, s := range r.entries {
		if match(s) {
			victims = append(victims, s)
		}
	}
	r.mu.Unlock()
	return len(victims), closeAndWait(ctx, victims)
}

func closeAndWait(ctx context.Context, ss []*Stream) error {
	for _, s := range ss {
		s.Close()
	}
	for _, s := range ss {
		select {
		case <-s.Done:
		case <-ctx.Done():
			return fmt.Errorf("waiting for stream %d to end: %w", s.ID, ctx.Err())
		}
	}
	return nil
}

func load(v *atomic.Int64) int64 {
	if v == nil {
		return 0
	}
	return v.Load()
}
