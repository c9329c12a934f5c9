package reconcile_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/p2ptun/p2ptun/config"
	"github.com/p2ptun/p2ptun/internal/harness"
	"github.com/p2ptun/p2ptun/reconcile"
	"github.com/p2ptun/p2ptun/registry"
	"github.com/p2ptun/p2ptun/spec"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fake is a Runner that opens listeners in a map; fail makes the next
// opens of a protocol fail with the given errors, in turn.
type fake struct {
	mu     sync.Mutex
	next   uint64
	open   map[uint64]string // ID → protocol
	fail   map[string][]error
	opened chan string
}

func newFake() *fake {
	return &fake{open: map[uint64]string{}, fail: map[string][]error{}, opened: make(chan string, 16)}
}

func (f *fake) Open(_ context.Context, s spec.Spec) (registry.Listener, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	proto := string(s.Protocol)
	if errs := f.fail[proto]; len(errs) > 0 {
		f.fail[proto] = errs[1:]
		return registry.Listener{}, errs[0]
	}
	f.next++
	f.open[f.next] = proto
	f.opened <- proto
	return registry.Listener{ID: f.next, Protocol: proto, ListenAddress: "/ip4/127.0.0.1/tcp/4321"}, nil
}

func (f *fake) Has(id uint64) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	_, ok := f.open[id]
	return ok
}

func (f *fake) Close(id uint64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.open, id)
}

func (f *fake) protocols() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, p := range f.open {
		out = append(out, p)
	}
	slices.Sort(out)
	return out
}

func listenTable(proto string) config.ListenTunnel {
	return config.ListenTunnel{Protocol: proto, Target: "/ip4/127.0.0.1/tcp/8080", AllowAll: true}
}

func newSet(t *testing.T, f *fake, cfg reconcile.Config) *reconcile.Set {
	cfg.Runner = f
	s := reconcile.New(cfg)
	t.Cleanup(s.Close)
	return s
}

// Apply adds, keeps, removes and restarts tunnels, and an invalid config
// changes nothing.
func TestApplyReconciles(t *testing.T) {
	f := newFake()
	s := newSet(t, f, reconcile.Config{})
	ctx := context.Background()
	a, b := listenTable("/x/a"), listenTable("/x/b")
	res, err := s.Apply(ctx, "c.toml", config.Config{Listen: []config.ListenTunnel{a, b}})
	if err != nil || len(res.Added) != 2 {
		t.Fatalf("Apply = %+v, %v; want two added", res, err)
	}
	bad := listenTable("no-slash")
	if _, err := s.Apply(ctx, "c.toml", config.Config{Listen: []config.ListenTunnel{bad}}); !errors.Is(err, config.ErrInvalid) {
		t.Fatalf("Apply(bad) = %v; want config.ErrInvalid", err)
	}
	if got := f.protocols(); !slices.Equal(got, []string{"/x/a", "/x/b"}) {
		t.Fatalf("after a bad config, open = %v; want both still", got)
	}
	// /x/a is closed at runtime: it shows closed, and the next Apply
	// restarts it; /x/b is dropped from the config and closed.
	st := s.Status()
	f.Close(st[0].ListenerID)
	if st := s.Status(); st[0].State != reconcile.Closed {
		t.Fatalf("status after a runtime close = %+v; want closed", st[0])
	}
	res, err = s.Apply(ctx, "c.toml", config.Config{Listen: []config.ListenTunnel{a}})
	if err != nil || !slices.Equal(res.Restarted, []string{a.Label()}) || !slices.Equal(res.Removed, []string{b.Label()}) {
		t.Fatalf("Apply = %+v, %v; want /x/a restarted and /x/b removed", res, err)
	}
	if got := f.protocols(); !slices.Equal(got, []string{"/x/a"}) {
		t.Fatalf("open = %v; want /x/a alone", got)
	}
}

// A tunnel whose first attempt fails is reported failed, retried, and
// comes up; an error no retry can fix is not retried.
func TestApplyRetriesUntilUp(t *testing.T) {
	f := newFake()
	f.fail["/x/busy"] = []error{errors.New("port taken"), errors.New("port taken")}
	f.fail["/x/bad"] = []error{fmt.Errorf("%w: no", spec.ErrInvalid)}
	var (
		mu     sync.Mutex
		failed []string
	)
	s := newSet(t, f, reconcile.Config{RetryMin: time.Millisecond, Failed: func(st reconcile.Status) {
		mu.Lock()
		failed = append(failed, st.Protocol)
		mu.Unlock()
	}})
	res, err := s.Apply(context.Background(), "c.toml", config.Config{Listen: []config.ListenTunnel{listenTable("/x/busy"), listenTable("/x/bad")}})
	if err != nil || len(res.Failed) != 2 {
		t.Fatalf("Apply = %+v, %v; want both failed at first", res, err)
	}
	if p := <-f.opened; p != "/x/busy" {
		t.Fatalf("opened %s; want /x/busy, retried", p)
	}
	harness.Until(t, 30*time.Second, "/x/busy up", func() bool { return s.Status()[0].State == reconcile.Up })
	if st := s.Status()[1]; st.State != reconcile.Failed || !errors.Is(st.Err, spec.ErrInvalid) {
		t.Fatalf("/x/bad = %+v; want failed for good", st)
	}
	mu.Lock()
	defer mu.Unlock()
	slices.Sort(failed) // the two tunnels start side by side
	if !slices.Equal(failed, []string{"/x/bad", "/x/busy", "/x/busy"}) {
		t.Errorf("Failed was told of %v; want each failed attempt", failed)
	}
}

// A failed tunnel's status says how many attempts failed and when the
// next one is due; one that failed for good has no next attempt.
func TestStatusNextRetry(t *testing.T) {
	f := newFake()
	f.fail["/x/busy"] = []error{errors.New("port taken")}
	f.fail["/x/bad"] = []error{fmt.Errorf("%w: no", spec.ErrInvalid)}
	s := newSet(t, f, reconcile.Config{RetryMin: time.Hour})
	before := time.Now()
	if _, err := s.Apply(context.Background(), "c.toml", config.Config{Listen: []config.ListenTunnel{listenTable("/x/busy"), listenTable("/x/bad")}}); err != nil {
		t.Fatal(err)
	}
	st := s.Status()
	if busy := st[0]; busy.State != reconcile.Failed || busy.Attempts != 1 || busy.Error != "port taken" ||
		busy.NextRetry.Before(before.Add(time.Hour)) || busy.NextRetry.After(time.Now().Add(time.Hour)) {
		t.Errorf("/x/busy = %+v; want failed once, retried an hour after its attempt", busy)
	}
	if bad := st[1]; bad.State != reconcile.Failed || bad.Attempts != 1 || !bad.NextRetry.IsZero() {
		t.Errorf("/x/bad = %+v; want failed once and no retry", bad)
	}
}

// Save keeps a tunnel it could save as a config tunnel (a reload of the
// same table leaves it alone), saves a forward's port 0 as the port it
// got, and closes again a tunnel it could not save.
func TestSave(t *testing.T) {
	f := newFake()
	var saved []config.ForwardTunnel
	saveErr := errors.New("disk full")
	s := newSet(t, f, reconcile.Config{
		SaveForward: func(t config.ForwardTunnel) error { saved = append(saved, t); return nil },
		SaveListen:  func(config.ListenTunnel) error { return saveErr },
	})
	ctx := context.Background()
	fwd, err := spec.ParseForward(spec.Request{Protocol: "/x/f", ListenAddress: "/ip4/127.0.0.1/tcp/0", Peer: harness.NewPeerID(t), Save: true})
	if err != nil {
		t.Fatal(err)
	}
	l, err := s.Save(ctx, fwd)
	if err != nil || len(saved) != 1 || saved[0].Listen != "/ip4/127.0.0.1/tcp/4321" {
		t.Fatalf("Save = %+v, %v, saved %+v; want the forward saved on the port it got", l, err, saved)
	}
	res, err := s.Apply(ctx, "c.toml", config.Config{Forward: saved})
	if err != nil || len(res.Unchanged) != 1 || len(res.Added) != 0 {
		t.Fatalf("Apply of the saved table = %+v, %v; want it unchanged", res, err)
	}
	lis, err := spec.ParseListen(spec.Request{Protocol: "/x/l", Target: "/ip4/127.0.0.1/tcp/80", AllowAll: true, Save: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Save(ctx, lis); !errors.Is(err, saveErr) {
		t.Fatalf("Save with a failing file = %v; want the save's error", err)
	}
	if got := f.protocols(); !slices.Equal(got, []string{"/x/f"}) {
		t.Fatalf("open = %v; want the unsaved listener closed again", got)
	}
	if st := s.Status(); len(st) != 1 {
		t.Fatalf("status = %+v; want the saved forward alone", st)
	}
	noFile := reconcile.New(reconcile.Config{Runner: f})
	defer noFile.Close()
	if _, err := noFile.Save(ctx, lis); !errors.Is(err, spec.ErrInvalid) {
		t.Fatalf("Save without a config file = %v; want spec.ErrInvalid", err)
	}
}
