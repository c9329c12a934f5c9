package node

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"

	ma "github.com/multiformats/go-multiaddr"

	"github.com/p2ptun/p2ptun/config"
	"github.com/p2ptun/p2ptun/internal/harness"
	"github.com/p2ptun/p2ptun/registry"
	"github.com/p2ptun/p2ptun/spec"
)

func state(n testNode, name string) TunnelStatus {
	for _, s := range n.Tunnels() {
		if s.Name == name {
			return s
		}
	}
	return TunnelStatus{}
}

func forwardAddr(t *testing.T, n testNode, name string) string {
	t.Helper()
	for _, l := range n.Listeners() {
		if l.Name == name {
			return hostPort(t, l.ListenAddress)
		}
	}
	t.Fatalf("no listener named %q in %+v", name, n.Listeners())
	return ""
}

func TestReloadKeepsUnchangedTunnelsAndTheirStreams(t *testing.T) {
	ctx := context.Background()
	a, b := newNode(t), newNode(t)
	target := server(t, echo)
	bCfg := config.Config{Listen: []config.ListenTunnel{
		{Name: "echo", Protocol: "/x/echo", Target: target, Allow: []string{a.id()}},
		{Name: "echo2", Protocol: "/x/echo2", Target: target, Allow: []string{a.id()}},
	}}
	if res, err := b.ApplyTunnels(ctx, "b.toml", bCfg); err != nil || len(res.Added) != 2 || len(res.Failed) != 0 {
		t.Fatalf("b: ApplyTunnels = %+v, %v; want 2 added", res, err)
	}
	one := config.ForwardTunnel{Name: "one", Protocol: "/x/echo", Listen: "/ip4/127.0.0.1/tcp/0", Peer: b.fullAddr()}
	res, err := a.ApplyTunnels(ctx, "a.toml", config.Config{Forward: []config.ForwardTunnel{one}})
	if err != nil || !slices.Equal(res.Added, []string{"one"}) {
		t.Fatalf("a: ApplyTunnels = %+v, %v; want one added", res, err)
	}
	if st := state(a, "one"); st.State != TunnelUp || st.ListenerID == 0 {
		t.Fatalf("status = %+v, want up with a listener", st)
	}
	c := dial(t, forwardAddr(t, a, "one"))
	harness.Echoes(t, c, "before")

	// A reload that adds a tunnel leaves "one" and its live stream alone.
	two := config.ForwardTunnel{Name: "two", Protocol: "/x/echo2", Listen: "/ip4/127.0.0.1/tcp/0", Peer: b.fullAddr()}
	res, err = a.ApplyTunnels(ctx, "a.toml", config.Config{Forward: []config.ForwardTunnel{one, two}})
	if err != nil || !slices.Equal(res.Added, []string{"two"}) || !slices.Equal(res.Unchanged, []string{"one"}) || len(res.Removed) != 0 {
		t.Fatalf("reload = %+v, %v; want two added, one unchanged", res, err)
	}
	harness.Echoes(t, c, "during") // the same connection still works
	harness.Echoes(t, dial(t, forwardAddr(t, a, "two")), "new tunnel")

	// A reload with a bad tunnel changes nothing.
	bad := config.ForwardTunnel{Name: "bad", Protocol: "web", Listen: "/ip4/127.0.0.1/tcp/0", Peer: b.fullAddr(), Line: 7}
	_, err = a.ApplyTunnels(ctx, "a.toml", config.Config{Forward: []config.ForwardTunnel{bad}})
	if !errors.Is(err, config.ErrInvalid) || !strings.Contains(err.Error(), "a.toml:7: bad: protocol") {
		t.Fatalf("bad reload = %v, want ErrInvalid at a.toml:7 naming the tunnel", err)
	}
	if n := len(a.Listeners()); n != 2 {
		t.Fatalf("after a rejected reload %d listeners run, want both still", n)
	}
	harness.Echoes(t, c, "after rejected")

	// Removing "one" closes it and ends its stream; "two" stays.
	res, err = a.ApplyTunnels(ctx, "a.toml", config.Config{Forward: []config.ForwardTunnel{two}})
	if err != nil || !slices.Equal(res.Removed, []string{"one"}) || !slices.Equal(res.Unchanged, []string{"two"}) {
		t.Fatalf("reload = %+v, %v; want one removed, two unchanged", res, err)
	}
	if _, err := io.ReadAll(c); err == nil {
		// A clean EOF is wrong too: the tunnel was closed under it.
		t.Fatal("the removed tunnel's stream ended cleanly, want a reset")
	}
	if ls := a.Listeners(); len(ls) != 1 || ls[0].Name != "two" {
		t.Fatalf("listeners = %+v, want only two", ls)
	}
}

func TestConfigTunnelIsRetriedUntilItStarts(t *testing.T) {
	ctx := context.Background()
	n := newNode(t)
	// A runtime listener holds the protocol, so the config one fails...
	if _, err := n.listenReq(ctx, spec.Request{Protocol: "/x/busy", Target: "127.0.0.1:1", AllowAll: true}); err != nil {
		t.Fatal(err)
	}
	events, cancel := n.Subscribe()
	defer cancel()
	cfg := config.Config{Listen: []config.ListenTunnel{{Name: "busy", Protocol: "/x/busy", Target: "127.0.0.1:2", AllowAll: true}}}
	res, err := n.ApplyTunnels(ctx, "c.toml", cfg)
	if err != nil || len(res.Failed) != 1 || !strings.Contains(res.Failed[0].Error, "already exists") {
		t.Fatalf("ApplyTunnels = %+v, %v; want busy failed: already exists", res, err)
	}
	if ev := next(t, events, EventTunnelFailed); ev.Name != "busy" || ev.Error == "" {
		t.Errorf("tunnel_failed = %+v", ev)
	}
	// ...until the runtime one goes away: then a retry brings it up.
	if _, err := n.CloseListeners(ctx, CloseRequest{TargetAddress: "/ip4/127.0.0.1/tcp/1"}); err != nil {
		t.Fatal(err)
	}
	up := next(t, events, EventTunnelUp)
	if up.Name != "busy" || up.TargetAddress != "/ip4/127.0.0.1/tcp/2" {
		t.Fatalf("tunnel_up = %+v, want the config tunnel", up)
	}
	// The event comes as the listener is committed, a moment before the
	// retry loop records the tunnel as up.
	pollUntil(t, "busy to be up", func() bool { return state(n, "busy").State == TunnelUp })

	// Closed at runtime: reported closed, and a reload restarts it.
	if _, err := n.CloseListeners(ctx, CloseRequest{Protocol: "/x/busy"}); err != nil {
		t.Fatal(err)
	}
	if st := state(n, "busy"); st.State != TunnelClosed {
		t.Fatalf("status after close = %+v, want closed", st)
	}
	res, err = n.ApplyTunnels(ctx, "c.toml", cfg)
	if err != nil || !slices.Equal(res.Restarted, []string{"busy"}) || state(n, "busy").State != TunnelUp {
		t.Fatalf("reload = %+v, %v, status %+v; want busy restarted and up", res, err, state(n, "busy"))
	}
}

func TestSaveAppendsOrUndoes(t *testing.T) {
	ctx := context.Background()
	var saved []config.ListenTunnel
	fail := false
	n := newNodeWith(t, func(o *Options) {
		o.SaveListen = func(t config.ListenTunnel) error {
			if fail {
				return errors.New("disk full")
			}
			saved = append(saved, t)
			return nil
		}
	})
	if _, err := n.listenReq(ctx, spec.Request{Name: "web", Protocol: "/x/web", Target: "127.0.0.1:1", AllowAll: true, Save: true}); err != nil {
		t.Fatal(err)
	}
	want := []config.ListenTunnel{{Name: "web", Protocol: "/x/web", Target: "127.0.0.1:1", AllowAll: true}}
	if !slices.EqualFunc(saved, want, func(a, b config.ListenTunnel) bool {
		return a.Name == b.Name && a.Protocol == b.Protocol && a.Target == b.Target && a.AllowAll == b.AllowAll
	}) {
		t.Fatalf("saved %+v, want %+v", saved, want)
	}
	// The saved tunnel is a config tunnel: reloading the file it went to
	// leaves it alone.
	res, err := n.ApplyTunnels(ctx, "c.toml", config.Config{Listen: saved})
	if err != nil || !slices.Equal(res.Unchanged, []string{"web"}) {
		t.Fatalf("reload = %+v, %v; want web unchanged", res, err)
	}

	fail = true
	_, err = n.listenReq(ctx, spec.Request{Protocol: "/x/other", Target: "127.0.0.1:1", AllowAll: true, Save: true})
	if err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Fatalf("Listen with a failing save = %v, want the save error", err)
	}
	if ls := n.Listeners(); len(ls) != 1 || slices.ContainsFunc(ls, func(l registry.Listener) bool { return l.Protocol == "/x/other" }) {
		t.Fatalf("after a failed save, listeners = %+v; want only web", ls)
	}
	if ts := n.Tunnels(); len(ts) != 1 {
		t.Fatalf("after a failed save, tunnels = %+v; want only web", ts)
	}

	eph := newNode(t)
	if _, err := eph.listenReq(ctx, spec.Request{Protocol: "/x/web", Target: "127.0.0.1:1", AllowAll: true, Save: true}); !errors.Is(err, ErrUsage) {
		t.Fatalf("--save without a config file = %v, want ErrUsage", err)
	}
	if n := len(eph.Listeners()); n != 0 {
		t.Fatalf("%d listeners left after a refused --save", n)
	}
}

// A tunnel made with --save runs as the config tunnel it is saved as: an
// unnamed one is labelled in `ls` as it will be when the daemon starts it
// from the file.
func TestSavedTunnelRunsAsItsTable(t *testing.T) {
	n := newNodeWith(t, func(o *Options) {
		o.SaveListen = func(config.ListenTunnel) error { return nil }
	})
	if _, err := n.listenReq(context.Background(), spec.Request{Protocol: "/x/web", Target: "127.0.0.1:1", AllowAll: true, Save: true}); err != nil {
		t.Fatal(err)
	}
	if ls := n.Listeners(); len(ls) != 1 || ls[0].Name != "listen /x/web" {
		t.Fatalf("listeners = %+v; want one named \"listen /x/web\", as the saved table is labelled", ls)
	}
}

// `forward … 127.0.0.1:0 --save` saves the port it got, in the form it
// was given, so that a restart binds the same port; the saved table is the
// tunnel a reload finds unchanged.
func TestForwardSaveStoresTheBoundPort(t *testing.T) {
	ctx := context.Background()
	var saved []config.ForwardTunnel
	n := newNodeWith(t, func(o *Options) {
		o.SaveForward = func(t config.ForwardTunnel) error { saved = append(saved, t); return nil }
	})
	peerID := newNode(t).id()
	for i, tc := range []struct{ listen, form string }{
		{"127.0.0.1:0", "127.0.0.1:%s"},
		{"/ip4/127.0.0.1/tcp/0", "/ip4/127.0.0.1/tcp/%s"},
	} {
		l, err := n.forwardReq(ctx, spec.Request{Protocol: fmt.Sprintf("/x/web%d", i), ListenAddress: tc.listen, Peer: "/p2p/" + peerID, Lazy: true, Save: true})
		if err != nil {
			t.Fatal(err)
		}
		port, err := ma.StringCast(l.ListenAddress).ValueForProtocol(ma.P_TCP)
		if err != nil || port == "0" {
			t.Fatalf("bound %s (%v)", l.ListenAddress, err)
		}
		if want := fmt.Sprintf(tc.form, port); saved[i].Listen != want {
			t.Errorf("saved listen = %q, want %q (the bound port)", saved[i].Listen, want)
		}
	}
	res, err := n.ApplyTunnels(ctx, "c.toml", config.Config{Forward: saved})
	if err != nil || len(res.Unchanged) != 2 || len(res.Added)+len(res.Removed)+len(res.Restarted) != 0 {
		t.Fatalf("reload of the saved tables = %+v, %v; want both unchanged", res, err)
	}
}

// TestReloadWhileStatusIsRead: a reload that moves an unchanged tunnel in
// the file updates its line while `status` (the API, `p2ptun wait`) reads
// the tunnels; run with -race, this used to be a data race.
func TestReloadWhileStatusIsRead(t *testing.T) {
	ctx := context.Background()
	n := newNode(t)
	target := server(t, echo)
	tunnel := config.ListenTunnel{Name: "echo", Protocol: "/x/echo", Target: target, AllowAll: true, Line: 1}
	if res, err := n.ApplyTunnels(ctx, "n.toml", config.Config{Listen: []config.ListenTunnel{tunnel}}); err != nil || len(res.Added) != 1 {
		t.Fatalf("ApplyTunnels = %+v, %v; want one added", res, err)
	}
	stop, done, reading := make(chan struct{}), make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		n.Tunnels()
		close(reading)
		for {
			select {
			case <-stop:
				return
			default:
				n.Tunnels()
			}
		}
	}()
	<-reading
	for line := 2; line < 1000; line++ {
		tunnel.Line = line
		if res, err := n.ApplyTunnels(ctx, "n.toml", config.Config{Listen: []config.ListenTunnel{tunnel}}); err != nil || len(res.Unchanged) != 1 {
			t.Fatalf("ApplyTunnels = %+v, %v; want it unchanged", res, err)
		}
	}
	close(stop)
	<-done
	if st := state(n, "echo"); st.Line != 999 || st.State != TunnelUp {
		t.Fatalf("status = %+v, want up at line 999", st)
	}
}

// ApplyTunnels parses a config built in code (not loaded from a file)
// with spec, before changing anything: an error wraps config.ErrInvalid
// and reads file:line: tunnel: spec's reason, once, with no "invalid
// argument" in the middle; a listener with no allowlist is refused there
// rather than failing when it starts.
func TestApplyTunnelsRefusesABadTableWithItsReason(t *testing.T) {
	n := newNode(t)
	for _, tc := range []struct {
		name string
		c    config.Config
		want string
	}{
		{
			"protocol outside /x/",
			config.Config{Listen: []config.ListenTunnel{{Name: "web", Protocol: "/web", Target: "127.0.0.1:1", AllowAll: true, Line: 3}}},
			`invalid config: c.toml:3: web: protocol "/web" must start with /x/ (or pass --allow-custom-protocol)`,
		},
		{
			"no allowlist",
			config.Config{Listen: []config.ListenTunnel{{Protocol: "/x/a", Target: "127.0.0.1:1", Line: 5}}},
			"invalid config: c.toml:5: listen /x/a: listener allows no peer: pass --allow PEER (repeatable), --allow-all, or --invite-only",
		},
		{
			"forward to a name",
			config.Config{Forward: []config.ForwardTunnel{{Protocol: "/x/a", Listen: "/dns/localhost/tcp/1", Peer: harness.NewPeerID(t)}}},
			`invalid config: c.toml: forward /x/a /dns/localhost/tcp/1: listen address "/dns/localhost/tcp/1" must use an IP (or localhost), not a name`,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, err := n.ApplyTunnels(context.Background(), "c.toml", tc.c)
			if err == nil || err.Error() != tc.want || !errors.Is(err, config.ErrInvalid) {
				t.Fatalf("ApplyTunnels = %+v, %v; want %q wrapping config.ErrInvalid", res, err, tc.want)
			}
			if ts := n.Tunnels(); len(ts) != 0 {
				t.Fatalf("tunnels after a refused config = %+v; want none", ts)
			}
		})
	}
}
