package registry_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/p2ptun/p2ptun/registry"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// closeCounter returns a Close func that counts its calls.
func closeCounter(n *atomic.Int32) func() error {
	return func() error { n.Add(1); return nil }
}

func addListener(t *testing.T, r *registry.Listeners, l *registry.Listener) *registry.Listener {
	t.Helper()
	if l.Close == nil {
		l.Close = func() error { return nil }
	}
	if err := r.Reserve(l); err != nil {
		t.Fatalf("Reserve(%+v): %v", l, err)
	}
	r.Commit(l)
	return l
}

func listIDs(ls []registry.Listener) []uint64 {
	var ids []uint64
	for _, l := range ls {
		ids = append(ids, l.ID)
	}
	return ids
}

func TestListenersReserveConflicts(t *testing.T) {
	tests := []struct {
		name       string
		first      registry.Listener
		second     registry.Listener
		wantExists bool
	}{
		{
			name:       "listen same protocol",
			first:      registry.Listener{Kind: registry.KindListen, Protocol: "/x/web", TargetAddress: "/ip4/127.0.0.1/tcp/80"},
			second:     registry.Listener{Kind: registry.KindListen, Protocol: "/x/web", TargetAddress: "/ip4/127.0.0.1/tcp/81"},
			wantExists: true,
		},
		{
			name:   "listen other protocol",
			first:  registry.Listener{Kind: registry.KindListen, Protocol: "/x/web"},
			second: registry.Listener{Kind: registry.KindListen, Protocol: "/x/ssh"},
		},
		{
			name:       "forward same address",
			first:      registry.Listener{Kind: registry.KindForward, Protocol: "/x/web", ListenAddress: "/ip4/127.0.0.1/tcp/9000"},
			second:     registry.Listener{Kind: registry.KindForward, Protocol: "/x/ssh", ListenAddress: "/ip4/127.0.0.1/tcp/9000"},
			wantExists: true,
		},
		{
			name:   "forward same protocol other address",
			first:  registry.Listener{Kind: registry.KindForward, Protocol: "/x/web", ListenAddress: "/ip4/127.0.0.1/tcp/9000"},
			second: registry.Listener{Kind: registry.KindForward, Protocol: "/x/web", ListenAddress: "/ip4/127.0.0.1/tcp/9001"},
		},
		{
			name:   "listen and forward same protocol",
			first:  registry.Listener{Kind: registry.KindListen, Protocol: "/x/web", ListenAddress: "/p2p/self"},
			second: registry.Listener{Kind: registry.KindForward, Protocol: "/x/web", ListenAddress: "/ip4/127.0.0.1/tcp/9000"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var r registry.Listeners
			first, second := tt.first, tt.second
			if err := r.Reserve(&first); err != nil {
				t.Fatalf("first Reserve: %v", err)
			}
			// A reservation conflicts before it is committed.
			err := r.Reserve(&second)
			if !tt.wantExists {
				if err != nil {
					t.Fatalf("second Reserve: %v", err)
				}
				if second.ID == first.ID {
					t.Errorf("both reservations got ID %d", first.ID)
				}
				return
			}
			if !errors.Is(err, registry.ErrExists) {
				t.Fatalf("second Reserve = %v, want ErrExists", err)
			}
			if second.ID != 0 {
				t.Errorf("failed Reserve set ID %d", second.ID)
			}
			// Committed, it still conflicts.
			r.Commit(&first)
			if err := r.Reserve(&second); !errors.Is(err, registry.ErrExists) {
				t.Fatalf("Reserve after Commit = %v, want ErrExists", err)
			}
			// Released, the key is free again.
			r.Release(&first)
			if err := r.Reserve(&second); err != nil {
				t.Fatalf("Reserve after Release: %v", err)
			}
			if second.ID <= first.ID {
				t.Errorf("ID after Release = %d, want > %d (IDs are never reused)", second.ID, first.ID)
			}
		})
	}
}

func TestListenersReleaseUncommitted(t *testing.T) {
	var r registry.Listeners
	l := registry.Listener{Kind: registry.KindListen, Protocol: "/x/web"}
	if err := r.Reserve(&l); err != nil {
		t.Fatal(err)
	}
	r.Release(&l)
	again := registry.Listener{Kind: registry.KindListen, Protocol: "/x/web"}
	if err := r.Reserve(&again); err != nil {
		t.Fatalf("Reserve after Release of a reservation: %v", err)
	}
	if got := r.List(); len(got) != 0 {
		t.Errorf("List = %+v, want nothing committed", got)
	}
}

func TestListenersList(t *testing.T) {
	var r registry.Listeners
	if got := r.List(); len(got) != 0 {
		t.Fatalf("zero registry List = %+v, want empty", got)
	}
	var ls []*registry.Listener
	for _, p := range []string{"/x/a", "/x/b", "/x/c", "/x/d", "/x/e", "/x/f"} {
		l := &registry.Listener{Kind: registry.KindListen, Protocol: p, AllowedPeers: []string{"peerA"}}
		if err := r.Reserve(l); err != nil {
			t.Fatal(err)
		}
		ls = append(ls, l)
	}
	// Commit out of order, and leave /x/c reserved only.
	for _, i := range []int{4, 0, 5, 1, 3} {
		r.Commit(ls[i])
	}
	got := r.List()
	want := []uint64{ls[0].ID, ls[1].ID, ls[3].ID, ls[4].ID, ls[5].ID}
	if ids := listIDs(got); !slices.Equal(ids, want) {
		t.Fatalf("List IDs = %v, want %v (ordered, without the uncommitted %d)", ids, want, ls[2].ID)
	}
	for i := 1; i < len(ls); i++ {
		if ls[i].ID <= ls[i-1].ID {
			t.Errorf("IDs not increasing: %d then %d", ls[i-1].ID, ls[i].ID)
		}
	}
	for _, l := range got {
		if l.Close != nil {
			t.Errorf("List entry %d exposes Close", l.ID)
		}
	}
	// The snapshot does not alias the registry's entries.
	got[0].AllowedPeers[0] = "mutated"
	got[0].Protocol = "mutated"
	again := r.List()
	if again[0].AllowedPeers[0] != "peerA" || again[0].Protocol != "/x/a" {
		t.Errorf("mutating a List snapshot changed the registry: %+v", again[0])
	}
}

func TestListenersAllowPeer(t *testing.T) {
	var r registry.Listeners
	l := addListener(t, &r, &registry.Listener{Kind: registry.KindListen, Protocol: "/x/a", AllowedPeers: []string{"peerA"}, InviteOnly: true})
	other := addListener(t, &r, &registry.Listener{Kind: registry.KindListen, Protocol: "/x/b"})
	before := r.List()

	// Concurrent additions of the same peers leave each once.
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for _, p := range []string{"peerB", "peerA", "peerC"} {
				if err := r.AllowPeer(l.ID, p); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	got := r.List()
	if !slices.Equal(got[0].AllowedPeers, []string{"peerA", "peerB", "peerC"}) {
		t.Errorf("AllowedPeers = %q, want peerA, peerB, peerC once each", got[0].AllowedPeers)
	}
	if len(got[1].AllowedPeers) != 0 {
		t.Errorf("the other listener's AllowedPeers = %q, want none", got[1].AllowedPeers)
	}
	if !slices.Equal(before[0].AllowedPeers, []string{"peerA"}) {
		t.Errorf("an earlier snapshot changed: %q", before[0].AllowedPeers)
	}

	if _, err := r.CloseMatching(func(x *registry.Listener) bool { return x.ID == other.ID }); err != nil {
		t.Fatal(err)
	}
	if err := r.AllowPeer(other.ID, "peerB"); !errors.Is(err, registry.ErrNotFound) {
		t.Errorf("AllowPeer on a closed listener: %v, want ErrNotFound", err)
	}
	uncommitted := &registry.Listener{Kind: registry.KindListen, Protocol: "/x/c"}
	if err := r.Reserve(uncommitted); err != nil {
		t.Fatal(err)
	}
	if err := r.AllowPeer(uncommitted.ID, "peerB"); !errors.Is(err, registry.ErrNotFound) {
		t.Errorf("AllowPeer on an uncommitted listener: %v, want ErrNotFound", err)
	}
}

func TestListenersCloseMatching(t *testing.T) {
	var r registry.Listeners
	var order []uint64
	var mu sync.Mutex
	record := func(l *registry.Listener) func() error {
		return func() error {
			mu.Lock()
			order = append(order, l.ID)
			mu.Unlock()
			return nil
		}
	}
	var ls []*registry.Listener
	for _, p := range []string{"/x/web", "/x/ssh", "/x/web2", "/x/db"} {
		l := &registry.Listener{Kind: registry.KindListen, Protocol: p}
		l.Close = record(l)
		addListener(t, &r, l)
		ls = append(ls, l)
	}
	n, err := r.CloseMatching(func(l *registry.Listener) bool { return l.Protocol != "/x/ssh" })
	if err != nil {
		t.Fatalf("CloseMatching: %v", err)
	}
	if n != 3 {
		t.Errorf("CloseMatching closed %d, want 3", n)
	}
	if want := []uint64{ls[0].ID, ls[2].ID, ls[3].ID}; !slices.Equal(order, want) {
		t.Errorf("closed IDs in order %v, want %v", order, want)
	}
	if ids := listIDs(r.List()); !slices.Equal(ids, []uint64{ls[1].ID}) {
		t.Errorf("List after CloseMatching = %v, want [%d]", ids, ls[1].ID)
	}
	// Their keys are free again.
	if err := r.Reserve(&registry.Listener{Kind: registry.KindListen, Protocol: "/x/web"}); err != nil {
		t.Errorf("Reserve of a closed listener's protocol: %v", err)
	}
}

func TestListenersCloseMatchingNone(t *testing.T) {
	var r registry.Listeners
	if _, err := r.CloseMatching(func(*registry.Listener) bool { return true }); !errors.Is(err, registry.ErrNotFound) {
		t.Errorf("CloseMatching on empty registry = %v, want ErrNotFound", err)
	}
	var closed atomic.Int32
	addListener(t, &r, &registry.Listener{Kind: registry.KindListen, Protocol: "/x/web", Close: closeCounter(&closed)})
	// An uncommitted reservation is not matched either.
	if err := r.Reserve(&registry.Listener{Kind: registry.KindListen, Protocol: "/x/new"}); err != nil {
		t.Fatal(err)
	}
	n, err := r.CloseMatching(func(l *registry.Listener) bool { return l.Protocol != "/x/web" })
	if !errors.Is(err, registry.ErrNotFound) {
		t.Errorf("CloseMatching with no match = %v, want ErrNotFound", err)
	}
	if n != 0 {
		t.Errorf("CloseMatching with no match = %d, want 0", n)
	}
	if closed.Load() != 0 {
		t.Errorf("Close called %d times, want 0", closed.Load())
	}
	if len(r.List()) != 1 {
		t.Errorf("List = %+v, want the unmatched listener", r.List())
	}
}

func TestListenersCloseMatchingFirstError(t *testing.T) {
	var r registry.Listeners
	errA, errB := errors.New("a failed"), errors.New("b failed")
	var closed atomic.Int32
	addListener(t, &r, &registry.Listener{Kind: registry.KindListen, Protocol: "/x/a", Close: func() error { closed.Add(1); return errA }})
	addListener(t, &r, &registry.Listener{Kind: registry.KindListen, Protocol: "/x/b", Close: func() error { closed.Add(1); return errB }})
	n, err := r.CloseMatching(func(*registry.Listener) bool { return true })
	if n != 2 || closed.Load() != 2 {
		t.Errorf("closed %d (Close called %d times), want 2", n, closed.Load())
	}
	if !errors.Is(err, errA) {
		t.Errorf("CloseMatching error = %v, want the first Close error %v", err, errA)
	}
	if len(r.List()) != 0 {
		t.Errorf("List after failed closes = %+v, want empty", r.List())
	}
}

func TestListenersCloseOutsideLock(t *testing.T) {
	var r registry.Listeners
	var seen []registry.Listener
	l := &registry.Listener{Kind: registry.KindForward, Protocol: "/x/web", ListenAddress: "/ip4/127.0.0.1/tcp/9000"}
	l.Close = func() error {
		// Takes the registry lock: deadlocks if Close runs under it.
		seen = r.List()
		return r.Reserve(&registry.Listener{Kind: registry.KindForward, ListenAddress: "/ip4/127.0.0.1/tcp/9000"})
	}
	addListener(t, &r, l)

	type result struct {
		n   int
		err error
	}
	done := make(chan result, 1)
	go func() {
		n, err := r.CloseMatching(func(x *registry.Listener) bool { return x.ID == l.ID })
		done <- result{n, err}
	}()
	select {
	case res := <-done:
		if res.err != nil || res.n != 1 {
			t.Fatalf("CloseMatching = %d, %v; want 1, nil", res.n, res.err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("CloseMatching deadlocked: Close runs under the registry lock")
	}
	if len(seen) != 0 {
		t.Errorf("List inside Close = %+v, want the closing listener already removed", seen)
	}
}

func TestStreamsRegister(t *testing.T) {
	var r registry.Streams
	if got := r.List(); len(got) != 0 {
		t.Fatalf("zero registry List = %+v, want empty", got)
	}
	var prev uint64
	for i := range 5 {
		s := &registry.Stream{Protocol: "/x/web"}
		id := r.Register(s)
		if id != s.ID {
			t.Errorf("Register returned %d, set ID %d", id, s.ID)
		}
		if id <= prev {
			t.Errorf("Register #%d = %d, want > %d", i, id, prev)
		}
		prev = id
	}
	r.Deregister(prev)
	r.Deregister(prev) // a no-op when gone
	if id := r.Register(&registry.Stream{}); id <= prev {
		t.Errorf("Register after Deregister = %d, want > %d (IDs are never reused)", id, prev)
	}
}

func TestStreamsRegisterConcurrent(t *testing.T) {
	var r registry.Streams
	const n = 50
	ids := make([]uint64, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { ids[i] = r.Register(&registry.Stream{}) })
	}
	wg.Wait()
	slices.Sort(ids)
	if ids = slices.Compact(ids); len(ids) != n {
		t.Errorf("%d concurrent Registers gave %d distinct IDs", n, len(ids))
	}
	if got := len(r.List()); got != n {
		t.Errorf("List has %d streams, want %d", got, n)
	}
}

func TestStreamsList(t *testing.T) {
	var r registry.Streams
	opened := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	var streams []*registry.Stream
	for i := range 4 {
		s := &registry.Stream{
			ListenerID:    7,
			Kind:          registry.KindForward,
			Protocol:      "/x/web",
			OriginAddress: "/ip4/127.0.0.1/tcp/5555",
			TargetAddress: "/p2p/peer",
			Peer:          "peer",
			OpenedAt:      opened,
			BytesIn:       new(atomic.Int64),
			BytesOut:      new(atomic.Int64),
		}
		s.BytesIn.Store(int64(100 * (i + 1)))
		s.BytesOut.Store(int64(i + 1))
		r.Register(s)
		streams = append(streams, s)
	}
	noCounters := &registry.Stream{Protocol: "/x/nil"}
	r.Register(noCounters)
	r.Deregister(streams[1].ID)

	// Counters are read at List time, not at Register time.
	streams[3].BytesIn.Add(5)

	got := r.List()
	want := []registry.StreamInfo{
		{ID: streams[0].ID, ListenerID: 7, Kind: registry.KindForward, Protocol: "/x/web", OriginAddress: "/ip4/127.0.0.1/tcp/5555", TargetAddress: "/p2p/peer", Peer: "peer", OpenedAt: opened, BytesIn: 100, BytesOut: 1},
		{ID: streams[2].ID, ListenerID: 7, Kind: registry.KindForward, Protocol: "/x/web", OriginAddress: "/ip4/127.0.0.1/tcp/5555", TargetAddress: "/p2p/peer", Peer: "peer", OpenedAt: opened, BytesIn: 300, BytesOut: 3},
		{ID: streams[3].ID, ListenerID: 7, Kind: registry.KindForward, Protocol: "/x/web", OriginAddress: "/ip4/127.0.0.1/tcp/5555", TargetAddress: "/p2p/peer", Peer: "peer", OpenedAt: opened, BytesIn: 405, BytesOut: 4},
		{ID: noCounters.ID, Protocol: "/x/nil"},
	}
	if !slices.Equal(got, want) {
		t.Errorf("List =\n%+v\nwant\n%+v", got, want)
	}
}

func TestStreamsCloseUnknown(t *testing.T) {
	var r registry.Streams
	if err := r.Close(context.Background(), 1); !errors.Is(err, registry.ErrNotFound) {
		t.Errorf("Close on empty registry = %v, want ErrNotFound", err)
	}
	id := r.Register(&registry.Stream{})
	r.Deregister(id)
	if err := r.Close(context.Background(), id); !errors.Is(err, registry.ErrNotFound) {
		t.Errorf("Close of a deregistered stream = %v, want ErrNotFound", err)
	}
}

// fakeStream is a Stream whose bridge ends, deregistering itself and
// closing Done, once Close is called.
type fakeStream struct {
	s       registry.Stream
	closeCh chan struct{}
	done    chan struct{}
	closes  atomic.Int32
}

func newFakeStream(r *registry.Streams) *fakeStream {
	f := &fakeStream{closeCh: make(chan struct{}), done: make(chan struct{})}
	f.s.Done = f.done
	f.s.Close = func() {
		if f.closes.Add(1) == 1 {
			close(f.closeCh)
		}
	}
	r.Register(&f.s)
	return f
}

// run plays the stream's bridge: it waits for Close, then ends. The
// caller must wait on f.done.
func (f *fakeStream) run(r *registry.Streams) {
	go func() {
		<-f.closeCh
		r.Deregister(f.s.ID)
		close(f.done)
	}()
}

func TestStreamsCloseWaitsForDone(t *testing.T) {
	var r registry.Streams
	victim := newFakeStream(&r)
	other := newFakeStream(&r)
	victim.run(&r)

	if err := r.Close(context.Background(), victim.s.ID); err != nil {
		t.Fatalf("Close: %v", err)
	}
	// Close returned, so Done must already be closed.
	select {
	case <-victim.done:
	default:
		t.Fatal("Close returned before the stream's Done was closed")
	}
	if n := victim.closes.Load(); n != 1 {
		t.Errorf("stream Close called %d times, want 1", n)
	}
	if n := other.closes.Load(); n != 0 {
		t.Errorf("other stream's Close called %d times, want 0", n)
	}
	if ids := r.List(); len(ids) != 1 || ids[0].ID != other.s.ID {
		t.Errorf("List after Close = %+v, want only stream %d", ids, other.s.ID)
	}
}

func TestStreamsCloseContextDone(t *testing.T) {
	var r registry.Streams
	f := newFakeStream(&r) // Done never closes: no run.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()

	err := r.Close(ctx, f.s.ID)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Close with a cancelled ctx = %v, want context.Canceled", err)
	}
	if n := f.closes.Load(); n != 1 {
		t.Errorf("stream Close called %d times, want 1 even though ctx was done", n)
	}
}

func TestStreamsCloseMatching(t *testing.T) {
	var r registry.Streams
	var fs []*fakeStream
	for range 4 {
		f := newFakeStream(&r)
		fs = append(fs, f)
	}
	fs[0].s.ListenerID, fs[2].s.ListenerID = 1, 1
	fs[0].run(&r)
	fs[2].run(&r)

	n, err := r.CloseMatching(context.Background(), func(s *registry.Stream) bool { return s.ListenerID == 1 })
	if err != nil || n != 2 {
		t.Fatalf("CloseMatching = %d, %v; want 2, nil", n, err)
	}
	for i, f := range fs {
		want := int32(0)
		if i == 0 || i == 2 {
			want = 1
			select {
			case <-f.done:
			default:
				t.Errorf("stream %d: CloseMatching returned before Done", f.s.ID)
			}
		}
		if got := f.closes.Load(); got != want {
			t.Errorf("stream %d: Close called %d times, want %d", f.s.ID, got, want)
		}
	}
	if ids := r.List(); len(ids) != 2 || ids[0].ID != fs[1].s.ID || ids[1].ID != fs[3].s.ID {
		t.Errorf("List after CloseMatching = %+v, want streams %d and %d", ids, fs[1].s.ID, fs[3].s.ID)
	}
}

// Open leaves the stream's goroutines to the caller: Close and the end of
// parent only call abort, and the stream is listed until finish.
func TestStreamsOpenAbortsAndFinishes(t *testing.T) {
	for _, end := range []string{"close", "parent"} {
		t.Run(end, func(t *testing.T) {
			var r registry.Streams
			parent, cancel := context.WithCancel(context.Background())
			defer cancel()
			aborted := make(chan struct{})
			var once sync.Once
			rec := &registry.Stream{Protocol: "/x/open"}
			id, finish := r.Open(parent, rec, func() { once.Do(func() { close(aborted) }) })
			// The caller's goroutine ends the stream when told to.
			go func() {
				<-aborted
				finish(nil)
			}()
			if list := r.List(); len(list) != 1 || list[0].ID != id {
				t.Fatalf("after Open: List = %+v, want the stream", list)
			}
			if end == "close" {
				if err := r.Close(context.Background(), id); err != nil {
					t.Fatal(err)
				}
			} else {
				cancel()
				<-rec.Done
			}
			if n := len(r.List()); n != 0 {
				t.Fatalf("after the stream finished, %d are still listed", n)
			}
		})
	}
}

func TestStreamHooks(t *testing.T) {
	var r registry.Streams
	type call struct {
		what  string
		info  registry.StreamInfo
		err   error
		cause string
	}
	var calls []call
	r.SetHooks(registry.Hooks{
		Opened: func(i registry.StreamInfo) { calls = append(calls, call{what: "opened", info: i}) },
		Closed: func(i registry.StreamInfo, err error) {
			// The stream is gone from the registry before Closed runs.
			if n := len(r.List()); n != 0 {
				t.Errorf("Closed ran with %d streams still listed", n)
			}
			calls = append(calls, call{what: "closed", info: i, err: err})
		},
		Failed: func(f registry.Failure) { calls = append(calls, call{what: "failed", cause: f.Cause}) },
	})
	boom := errors.New("boom")
	rec := &registry.Stream{Protocol: "/x/hooks", Peer: "p", Setup: 3 * time.Millisecond}
	_, finish := r.Open(context.Background(), rec, func() {})
	rec.BytesIn.Add(5) // Open allocated the counters
	rec.BytesOut.Add(7)
	finish(boom)
	r.Fail(registry.Failure{Protocol: "/x/hooks", Cause: "denied"})
	if len(calls) != 3 {
		t.Fatalf("hooks called %d times, want 3: %+v", len(calls), calls)
	}
	if c := calls[0]; c.what != "opened" || c.info.Protocol != "/x/hooks" || c.info.ID == 0 || c.info.Setup != 3*time.Millisecond || c.info.BytesIn != 0 {
		t.Errorf("first call = %+v, want opened with the record and no bytes yet", c)
	}
	if c := calls[1]; c.what != "closed" || c.info.BytesIn != 5 || c.info.BytesOut != 7 || !errors.Is(c.err, boom) {
		t.Errorf("second call = %+v, want closed with 5 in, 7 out and run's error", c)
	}
	if c := calls[2]; c.what != "failed" || c.cause != "denied" {
		t.Errorf("third call = %+v, want failed with cause denied", c)
	}
}

func TestListenerHooks(t *testing.T) {
	var r registry.Listeners
	var ups, downs []string
	r.SetHooks(registry.ListenerHooks{
		Up:   func(l registry.Listener) { ups = append(ups, l.Protocol) },
		Down: func(l registry.Listener) { downs = append(downs, l.Protocol) },
	})
	for _, p := range []string{"/x/a", "/x/b"} {
		l := &registry.Listener{Kind: registry.KindListen, Protocol: p, Close: func() error { return nil }}
		if err := r.Reserve(l); err != nil {
			t.Fatal(err)
		}
		r.Commit(l)
	}
	released := &registry.Listener{Kind: registry.KindListen, Protocol: "/x/never"}
	if err := r.Reserve(released); err != nil {
		t.Fatal(err)
	}
	r.Release(released)
	if _, err := r.CloseMatching(func(l *registry.Listener) bool { return l.Protocol == "/x/a" }); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(ups, []string{"/x/a", "/x/b"}) || !slices.Equal(downs, []string{"/x/a"}) {
		t.Fatalf("up %v, down %v; want up [/x/a /x/b], down [/x/a] (a released reservation is neither)", ups, downs)
	}
}

func TestWaitIdle(t *testing.T) {
	var r registry.Streams
	if err := r.WaitIdle(context.Background()); err != nil {
		t.Fatalf("WaitIdle with no streams = %v, want nil at once", err)
	}
	_, finish := r.Open(context.Background(), &registry.Stream{}, func() {})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := r.WaitIdle(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("WaitIdle with a live stream and a done context = %v, want context.Canceled", err)
	}
	idle := make(chan error, 1)
	go func() { idle <- r.WaitIdle(context.Background()) }()
	finish(nil)
	if err := <-idle; err != nil {
		t.Fatalf("WaitIdle after the last stream ended = %v", err)
	}
}

// A listener's label is its name, else what it is: stable across
// restarts, unlike its ID.
func TestListenerLabel(t *testing.T) {
	for _, c := range []struct {
		name string
		l    registry.Listener
		want string
	}{
		{"named", registry.Listener{ID: 7, Name: "web", Kind: registry.KindForward, Protocol: "/x/web"}, "web"},
		{"listen", registry.Listener{ID: 8, Kind: registry.KindListen, Protocol: "/x/ssh", TargetAddress: "/ip4/127.0.0.1/tcp/22"}, "listen /x/ssh"},
		{"forward", registry.Listener{ID: 9, Kind: registry.KindForward, Protocol: "/x/web", ListenAddress: "/ip4/127.0.0.1/tcp/9000"}, "forward /x/web /ip4/127.0.0.1/tcp/9000"},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := c.l.Label(); got != c.want {
				t.Errorf("Label() = %q, want %q", got, c.want)
			}
		})
	}
}
