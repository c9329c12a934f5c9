package invite

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/peerstore"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/p2ptun/p2ptun/peerdial"
	"github.com/p2ptun/p2ptun/refusal"
	"github.com/p2ptun/p2ptun/registry"
	"github.com/p2ptun/p2ptun/ticket"
)

const (
	alice = peer.ID("alice")
	bob   = peer.ID("bob")
)

// allowed records the peers a served listener was told to allow.
type allowed struct {
	mu    sync.Mutex
	peers []peer.ID
	err   error
}

func (a *allowed) allow(p peer.ID) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.err != nil {
		return a.err
	}
	a.peers = append(a.peers, p)
	return nil
}

func (a *allowed) list() []peer.ID {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Clone(a.peers)
}

// TestRedeem covers each verdict a Book gives, without a network.
func TestRedeem(t *testing.T) {
	now := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	b := New(Config{Now: func() time.Time { return now }})
	var l allowed
	forget := b.Serve(7, l.allow)

	d := b.Draft(time.Minute)
	if len(d.Secret) != secretLen || !d.Expires.Equal(now.Add(time.Minute)) {
		t.Fatalf("Draft = %d-byte secret expiring %s, want %d bytes expiring in a minute", len(d.Secret), d.Expires, secretLen)
	}
	if got := b.redeem(alice, d.Secret); got != verdictUnknown {
		t.Fatalf("a draft not added: %q, want %q", got, verdictUnknown)
	}
	if err := b.Add(7, "/x/echo", d); err != nil {
		t.Fatal(err)
	}
	for _, step := range []struct {
		who  peer.ID
		want string
	}{{alice, verdictOK}, {alice, verdictOK}, {bob, verdictUsed}} {
		if got := b.redeem(step.who, d.Secret); got != step.want {
			t.Fatalf("%s presents: %q, want %q", step.who, got, step.want)
		}
	}
	if got := l.list(); !slices.Equal(got, []peer.ID{alice}) {
		t.Fatalf("listener told to allow %q, want only alice, once", got)
	}

	late := b.Draft(time.Minute)
	if err := b.Add(7, "/x/echo", late); err != nil {
		t.Fatal(err)
	}
	now = now.Add(time.Minute)
	if got := b.redeem(bob, late.Secret); got != verdictExpired {
		t.Fatalf("at its expiry: %q, want %q", got, verdictExpired)
	}

	// A listener that refuses the peer (it is closing) makes the invite
	// unknown, and it is dropped.
	l.err = registry.ErrNotFound
	refused := b.Draft(time.Minute)
	if err := b.Add(7, "/x/echo", refused); err != nil {
		t.Fatal(err)
	}
	if got := b.redeem(bob, refused.Secret); got != verdictUnknown {
		t.Fatalf("the listener refuses: %q, want %q", got, verdictUnknown)
	}
	if got := b.redeem(bob, refused.Secret); got != verdictUnknown {
		t.Fatalf("presented again: %q, want %q", got, verdictUnknown)
	}

	// Forgetting the listener drops its invites, and no new one can name it.
	forget()
	if n := b.Len(); n != 0 {
		t.Fatalf("%d invites kept after their listener was forgotten", n)
	}
	if err := b.Add(7, "/x/echo", b.Draft(time.Minute)); !errors.Is(err, registry.ErrNotFound) {
		t.Fatalf("Add to a forgotten listener: %v, want registry.ErrNotFound", err)
	}
}

// TestAddDropsExpiredWhenFull: at maxInvites, expired invites make room;
// unexpired ones do not.
func TestAddDropsExpiredWhenFull(t *testing.T) {
	now := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	b := New(Config{Now: func() time.Time { return now }})
	b.Serve(1, func(peer.ID) error { return nil })
	for range maxInvites {
		if err := b.Add(1, "/x/a", b.Draft(time.Minute)); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Add(1, "/x/a", b.Draft(time.Minute)); err == nil {
		t.Fatalf("Add past %d unexpired invites succeeded", maxInvites)
	}
	now = now.Add(time.Minute)
	if err := b.Add(1, "/x/a", b.Draft(time.Minute)); err != nil {
		t.Fatalf("Add once the others expired: %v", err)
	}
	if n := b.Len(); n != 1 {
		t.Fatalf("%d invites kept, want the new one only", n)
	}
}

// loopbackHost is a bare libp2p host on loopback.
func loopbackHost(t *testing.T) host.Host {
	t.Helper()
	h, err := libp2p.New(libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"), libp2p.DisableRelay())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = h.Close() })
	return h
}

// TestPresent runs the protocol between two hosts: each verdict maps to
// its error, and a host that serves no invites is ErrNoListener.
func TestPresent(t *testing.T) {
	listener, a, b2 := loopbackHost(t), loopbackHost(t), loopbackHost(t)
	book := New(Config{ReadTimeout: 10 * time.Second})
	t.Cleanup(book.Close)
	var l allowed
	book.Serve(3, l.allow)
	d := book.Draft(time.Hour)
	if err := book.Add(3, "/x/echo", d); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	present := func(from host.Host, secret []byte) error {
		from.Peerstore().AddAddrs(listener.ID(), listener.Addrs(), peerstore.PermanentAddrTTL)
		return Present(ctx, from, listener.ID(), secret, false, 10*time.Second, 10*time.Second)
	}
	if err := present(a, d.Secret); !errors.Is(err, peerdial.ErrNoListener) {
		t.Fatalf("a host without the handler: %v, want peerdial.ErrNoListener", err)
	}
	listener.SetStreamHandler(Protocol, book.Handle)
	if err := present(a, d.Secret); err != nil {
		t.Fatalf("first presentation: %v", err)
	}
	if err := present(b2, d.Secret); !errors.Is(err, refusal.ErrDenied) || !strings.Contains(err.Error(), "already used") {
		t.Fatalf("second peer: %v, want refusal.ErrDenied, already used", err)
	}
	if err := present(b2, []byte("made up")); !errors.Is(err, refusal.ErrDenied) || !strings.Contains(err.Error(), "unknown invite") {
		t.Fatalf("made-up secret: %v, want refusal.ErrDenied, unknown invite", err)
	}
	if got := l.list(); !slices.Equal(got, []peer.ID{a.ID()}) {
		t.Fatalf("allowed %q, want the first peer only", got)
	}

	// After Close, the handler resets every stream.
	book.Close()
	s, err := b2.NewStream(ctx, listener.ID(), Protocol)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	_ = s.SetDeadline(time.Now().Add(10 * time.Second))
	_, _ = s.Write(d.Secret)
	_ = s.CloseWrite()
	if reply, err := io.ReadAll(s); !errors.Is(err, network.ErrReset) {
		t.Fatalf("after Close: reply %q, err %v; want a reset", reply, err)
	}
}

func TestAddrsOrder(t *testing.T) {
	relay := "/p2p/12D3KooWHMjc3FHGdH3fUgidhsXCU1DwaT8qAPJVAnG42nWrXfPw"
	in := []string{
		"/ip4/127.0.0.1/tcp/4141",
		"/ip4/192.168.1.7/tcp/4141",
		"/ip4/5.6.7.8/tcp/4141" + relay + "/p2p-circuit",
		"/ip6/::1/tcp/4141",
		"/ip4/1.2.3.4/udp/4141/quic-v1",
		"/ip4/1.2.3.4/tcp/4141",
		"/ip4/1.2.3.4/tcp/4141",
	}
	want := []string{
		"/ip4/1.2.3.4/tcp/4141",
		"/ip4/1.2.3.4/udp/4141/quic-v1",
		"/ip4/5.6.7.8/tcp/4141" + relay + "/p2p-circuit",
		"/ip4/192.168.1.7/tcp/4141",
		"/ip4/127.0.0.1/tcp/4141",
		"/ip6/::1/tcp/4141",
	}
	var as []ma.Multiaddr
	for _, s := range in {
		as = append(as, ma.StringCast(s))
	}
	var got []string
	for _, a := range Addrs(as) {
		got = append(got, a.String())
	}
	if !slices.Equal(got, want) {
		t.Errorf("Addrs =\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	var many []ma.Multiaddr
	for i := range ticket.MaxAddrs + 10 {
		many = append(many, ma.StringCast(fmt.Sprintf("/ip4/127.0.0.1/tcp/%d", 1000+i)))
	}
	if n := len(Addrs(many)); n != ticket.MaxAddrs {
		t.Errorf("Addrs kept %d addresses, want %d", n, ticket.MaxAddrs)
	}
}
