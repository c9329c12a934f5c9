package node

import (
	"bytes"
	"context"
	"errors"
	"io"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/peerstore"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/p2ptun/p2ptun/access"
	"github.com/p2ptun/p2ptun/config"
	"github.com/p2ptun/p2ptun/config/homedir"
	"github.com/p2ptun/p2ptun/spec"
	"github.com/p2ptun/p2ptun/ticket"
)

// clock is a settable time for invite expiry.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock() *clock { return &clock{now: time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// anyHost is a bare libp2p host on loopback, not a p2ptun node.
func anyHost(t *testing.T) host.Host {
	t.Helper()
	key, err := homedir.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	return newHostile(t, key)
}

// share asks n for a ticket to proto and decodes it.
func share(t *testing.T, n testNode, r ShareRequest) (Share, ticket.Ticket) {
	t.Helper()
	sh, err := n.Share(context.Background(), r)
	if err != nil {
		t.Fatalf("Share(%+v): %v", r, err)
	}
	tk, err := ticket.Decode(sh.Ticket)
	if err != nil {
		t.Fatalf("the ticket Share made does not decode: %v", err)
	}
	return sh, tk
}

// forwardTicket forwards a free loopback port on n with tk; it returns the
// forward's host:port, or the error.
func forwardTicket(n testNode, tk ticket.Ticket) (string, error) {
	l, err := n.forwardReq(context.Background(), spec.TicketForward(tk, "/ip4/127.0.0.1/tcp/0"))
	if err != nil {
		return "", err
	}
	a, _ := ma.NewMultiaddr(l.ListenAddress)
	port, _ := a.ValueForProtocol(ma.P_TCP)
	return "127.0.0.1:" + port, nil
}

// echoes makes one echo round trip through the forward at addr.
func echoes(t *testing.T, addr string) {
	t.Helper()
	if err := roundTrip(addr, 0); err != nil {
		t.Fatal(err)
	}
}

// allowedPeers returns what the registry says proto's listener allows.
func allowedPeers(t *testing.T, n testNode, proto string) []string {
	t.Helper()
	for _, l := range n.Listeners() {
		if l.Kind == "listen" && l.Protocol == proto {
			return l.AllowedPeers
		}
	}
	t.Fatalf("no listener on %s", proto)
	return nil
}

func TestShareTicketForward(t *testing.T) {
	a, b := newNode(t), newNode(t)
	ctx := context.Background()
	if _, err := b.listenReq(ctx, spec.Request{Protocol: "/x/echo", Target: server(t, echo), Allow: []string{a.id()}}); err != nil {
		t.Fatal(err)
	}
	sh, tk := share(t, b, ShareRequest{Protocol: "/x/echo"})
	if sh.Peer != b.id() || sh.Protocol != "/x/echo" || !sh.Expires.IsZero() {
		t.Errorf("Share = %+v, want peer %s, protocol /x/echo, no expiry", sh, b.id())
	}
	if !slices.Equal(sh.Addresses, b.Identity().Addresses) {
		t.Errorf("Share.Addresses = %q, want the node's addresses %q", sh.Addresses, b.Identity().Addresses)
	}
	if tk.Peer.String() != b.id() || tk.Protocol != "/x/echo" || tk.Secret != nil || len(tk.Addrs) != len(sh.Addresses) {
		t.Errorf("ticket = %+v, want what Share says (%+v) and no secret", tk, sh)
	}
	// a has never met b: the ticket's addresses are all it has.
	if got := a.Host().Peerstore().Addrs(b.Host().ID()); len(got) != 0 {
		t.Fatalf("a knows b's addresses already: %v", got)
	}
	fwd, err := forwardTicket(a, tk)
	if err != nil {
		t.Fatal(err)
	}
	echoes(t, fwd)
	if got := allowedPeers(t, b, "/x/echo"); !slices.Equal(got, []string{a.id()}) {
		t.Errorf("a plain ticket changed the allowlist: %q", got)
	}
}

func TestInviteAdmitsTheFirstPeerOnly(t *testing.T) {
	a, b, c := newNode(t), newNode(t), newNode(t)
	ctx := context.Background()
	if _, err := b.listenReq(ctx, spec.Request{Protocol: "/x/echo", Target: server(t, echo), InviteOnly: true}); err != nil {
		t.Fatal(err)
	}
	before := time.Now()
	sh, tk := share(t, b, ShareRequest{Protocol: "/x/echo", Invite: true})
	if len(tk.Secret) != 32 {
		t.Errorf("invite secret is %d bytes, want 32", len(tk.Secret))
	}
	if sh.Expires.Before(before.Add(DefaultInviteTTL)) || sh.Expires.After(time.Now().Add(DefaultInviteTTL)) ||
		!tk.Expires.Equal(sh.Expires.Truncate(time.Second)) {
		t.Errorf("expiry: Share says %v, ticket %v; want an hour from now, the ticket to the second", sh.Expires, tk.Expires)
	}
	if got := allowedPeers(t, b, "/x/echo"); len(got) != 0 {
		t.Fatalf("invite-only listener allows %q before any invite", got)
	}

	// a redeems the invite and can use the listener.
	fwd, err := forwardTicket(a, tk)
	if err != nil {
		t.Fatalf("first use of the invite: %v", err)
	}
	echoes(t, fwd)
	if got := allowedPeers(t, b, "/x/echo"); !slices.Equal(got, []string{a.id()}) {
		t.Fatalf("allowlist after redemption = %q, want [%s]", got, a.id())
	}

	// c presents the same invite: refused, and nothing is bound on c.
	_, err = forwardTicket(c, tk)
	if !errors.Is(err, ErrDenied) || !strings.Contains(err.Error(), "invite already used") || strings.Contains(err.Error(), "\n") {
		t.Fatalf("second peer: err = %v, want ErrDenied saying \"invite already used\" in one line", err)
	}
	if l := c.Listeners(); len(l) != 0 {
		t.Fatalf("refused invite left listeners on the forwarding node: %+v", l)
	}
	// Nor can c use the listener without the invite.
	plain := tk
	plain.Secret = nil
	cfwd, err := forwardTicket(c, plain)
	if err != nil {
		t.Fatal(err)
	}
	expectReset(t, cfwd)
	if got := allowedPeers(t, b, "/x/echo"); !slices.Equal(got, []string{a.id()}) {
		t.Fatalf("allowlist after the refused peer = %q, want [%s]", got, a.id())
	}

	// a may present it again (a retried forward): nothing changes.
	again, err := forwardTicket(a, tk)
	if err != nil {
		t.Fatalf("the admitted peer presenting its invite again: %v", err)
	}
	echoes(t, again)
	if got := allowedPeers(t, b, "/x/echo"); !slices.Equal(got, []string{a.id()}) {
		t.Fatalf("allowlist after a second presentation = %q, want [%s]", got, a.id())
	}
	logs := b.logs.String()
	if n := strings.Count(logs, "invite redeemed"); n != 1 {
		t.Errorf("%d \"invite redeemed\" log lines, want 1:\n%s", n, logs)
	}
	if !strings.Contains(logs, "refused invite") || !strings.Contains(logs, "peer="+c.id()) {
		t.Errorf("the refused invite is not logged with its peer:\n%s", logs)
	}
}

func TestInviteExpires(t *testing.T) {
	clk := newClock()
	a, c := newNode(t), newNode(t)
	b := newNodeWith(t, func(o *Options) { o.Now = clk.Now })
	if _, err := b.listenReq(context.Background(), spec.Request{Protocol: "/x/echo", Target: server(t, echo), InviteOnly: true}); err != nil {
		t.Fatal(err)
	}
	sh, early := share(t, b, ShareRequest{Protocol: "/x/echo", Invite: true, TTL: config.D(time.Minute)})
	_, late := share(t, b, ShareRequest{Protocol: "/x/echo", Invite: true, TTL: config.D(time.Minute)})
	if want := clk.Now().Add(time.Minute); !sh.Expires.Equal(want) || !early.Expires.Equal(want) {
		t.Fatalf("expiry = %v (ticket %v), want %v by the node's clock", sh.Expires, early.Expires, want)
	}

	clk.advance(time.Minute - time.Second)
	fwd, err := forwardTicket(c, early)
	if err != nil {
		t.Fatalf("invite a second before it expires: %v", err)
	}
	echoes(t, fwd)

	clk.advance(time.Second)
	_, err = forwardTicket(a, late)
	if !errors.Is(err, ErrDenied) || !strings.Contains(err.Error(), "invite expired") {
		t.Fatalf("expired invite: err = %v, want ErrDenied saying \"invite expired\"", err)
	}
	if l := a.Listeners(); len(l) != 0 {
		t.Fatalf("refused invite left listeners on the forwarding node: %+v", l)
	}
	if got := allowedPeers(t, b, "/x/echo"); !slices.Equal(got, []string{c.id()}) {
		t.Fatalf("allowlist = %q, want only the peer that redeemed in time", got)
	}
}

func TestInviteAdmitsToItsListenerOnly(t *testing.T) {
	a, b, other := newNode(t), newNode(t), newNode(t)
	ctx := context.Background()
	if _, err := b.listenReq(ctx, spec.Request{Protocol: "/x/one", Target: server(t, echo), InviteOnly: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.listenReq(ctx, spec.Request{Protocol: "/x/two", Target: server(t, echo), Allow: []string{other.id()}, InviteOnly: true}); err != nil {
		t.Fatal(err)
	}
	_, tk := share(t, b, ShareRequest{Protocol: "/x/one", Invite: true})
	one, err := forwardTicket(a, tk)
	if err != nil {
		t.Fatal(err)
	}
	echoes(t, one)

	l, err := a.forwardReq(ctx, spec.Request{Protocol: "/x/two", ListenAddress: "127.0.0.1:0", Peer: b.fullAddr()})
	if err != nil {
		t.Fatal(err)
	}
	expectReset(t, hostPort(t, l.ListenAddress))
	if got := allowedPeers(t, b, "/x/one"); !slices.Equal(got, []string{a.id()}) {
		t.Errorf("/x/one allows %q, want [%s]", got, a.id())
	}
	if got := allowedPeers(t, b, "/x/two"); !slices.Equal(got, []string{other.id()}) {
		t.Errorf("/x/two allows %q, want only [%s]", got, other.id())
	}
}

func TestInviteUnknown(t *testing.T) {
	a, b := newNode(t), newNode(t)
	ctx := context.Background()
	if _, err := b.listenReq(ctx, spec.Request{Protocol: "/x/echo", Target: server(t, echo), InviteOnly: true}); err != nil {
		t.Fatal(err)
	}
	_, tk := share(t, b, ShareRequest{Protocol: "/x/echo", Invite: true})

	forged := tk
	forged.Secret = bytes.Repeat([]byte{1}, 32)
	if _, err := forwardTicket(a, forged); !errors.Is(err, ErrDenied) || !strings.Contains(err.Error(), "unknown invite") {
		t.Fatalf("made-up secret: err = %v, want ErrDenied saying \"unknown invite\"", err)
	}

	// Closing the listener drops its invites; a new listener on the same
	// protocol does not inherit them.
	if _, err := b.CloseListeners(ctx, CloseRequest{Protocol: "/x/echo"}); err != nil {
		t.Fatal(err)
	}
	if kept := b.invites.Len(); kept != 0 {
		t.Fatalf("the node keeps %d invites of a closed listener", kept)
	}
	if _, err := b.listenReq(ctx, spec.Request{Protocol: "/x/echo", Target: server(t, echo), InviteOnly: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := forwardTicket(a, tk); !errors.Is(err, ErrDenied) || !strings.Contains(err.Error(), "unknown invite") {
		t.Fatalf("invite of a closed listener: err = %v, want ErrDenied saying \"unknown invite\"", err)
	}
	if got := allowedPeers(t, b, "/x/echo"); len(got) != 0 {
		t.Fatalf("allowlist = %q, want empty", got)
	}
	if l := a.Listeners(); len(l) != 0 {
		t.Fatalf("refused invites left listeners: %+v", l)
	}
}

func TestShareAndInviteErrors(t *testing.T) {
	a, b := newNode(t), newNode(t)
	ctx := context.Background()
	if _, err := b.listenReq(ctx, spec.Request{Protocol: "/x/open", Target: server(t, echo), AllowAll: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.forwardReq(ctx, spec.Request{Protocol: "/x/fwd", ListenAddress: "127.0.0.1:0", Peer: a.fullAddr()}); err != nil {
		t.Fatal(err)
	}
	secret := bytes.Repeat([]byte{1}, 32)
	for _, tc := range []struct {
		name string
		do   func() error
		is   error
		want string
	}{
		{"share with no listener", func() error { _, err := b.Share(ctx, ShareRequest{Protocol: "/x/none"}); return err }, ErrNotFound, "nothing listens on /x/none"},
		{"share a forward's protocol", func() error { _, err := b.Share(ctx, ShareRequest{Protocol: "/x/fwd"}); return err }, ErrNotFound, "nothing listens"},
		{"share a bad protocol", func() error { _, err := b.Share(ctx, ShareRequest{Protocol: "x"}); return err }, ErrUsage, "must be a path"},
		{"TTL without invite", func() error {
			_, err := b.Share(ctx, ShareRequest{Protocol: "/x/open", TTL: config.D(time.Hour)})
			return err
		}, ErrUsage, "add --invite"},
		{"negative TTL", func() error {
			_, err := b.Share(ctx, ShareRequest{Protocol: "/x/open", Invite: true, TTL: config.D(-time.Hour)})
			return err
		}, ErrUsage, "negative"},
		{"invite to an allow-all listener", func() error { _, err := b.Share(ctx, ShareRequest{Protocol: "/x/open", Invite: true}); return err }, ErrUsage, "without --invite"},
		{"invite-only and allow-all", func() error {
			_, err := b.listenReq(ctx, spec.Request{Protocol: "/x/both", Target: "127.0.0.1:1", AllowAll: true, InviteOnly: true})
			return err
		}, ErrUsage, "contradict"},
		{"lazy invite", func() error {
			_, err := a.forwardReq(ctx, spec.Request{Protocol: "/x/open", ListenAddress: "127.0.0.1:0", Peer: b.fullAddr(), Invite: secret, Lazy: true})
			return err
		}, ErrUsage, "drop --lazy"},
		{"short secret", func() error {
			_, err := a.forwardReq(ctx, spec.Request{Protocol: "/x/open", ListenAddress: "127.0.0.1:0", Peer: b.fullAddr(), Invite: []byte("short")})
			return err
		}, ErrUsage, "secret"},
		{"address of another peer", func() error {
			_, err := a.forwardReq(ctx, spec.Request{Protocol: "/x/open", ListenAddress: "127.0.0.1:0", Peer: b.id(), Addrs: []string{a.fullAddr()}})
			return err
		}, ErrUsage, "is for peer"},
		{"address that is not a multiaddr", func() error {
			_, err := a.forwardReq(ctx, spec.Request{Protocol: "/x/open", ListenAddress: "127.0.0.1:0", Peer: b.id(), Addrs: []string{"127.0.0.1:4141"}})
			return err
		}, ErrUsage, "not a valid multiaddr"},
		{"address with no transport", func() error {
			_, err := a.forwardReq(ctx, spec.Request{Protocol: "/x/open", ListenAddress: "127.0.0.1:0", Peer: b.id(), Addrs: []string{"/p2p/" + b.id()}})
			return err
		}, ErrUsage, "no transport"},
		{"invite to a peer that takes none", func() error {
			// A host that is not a p2ptun node.
			h := anyHost(t)
			a.Host().Peerstore().AddAddrs(h.ID(), h.Addrs(), peerstore.PermanentAddrTTL)
			_, err := a.forwardReq(ctx, spec.Request{Protocol: "/x/open", ListenAddress: "127.0.0.1:0", Peer: h.ID().String(), Invite: secret})
			return err
		}, ErrNoListener, "takes no invites"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.do()
			if !errors.Is(err, tc.is) || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "\n") {
				t.Fatalf("err = %v, want one line wrapping %v and containing %q", err, tc.is, tc.want)
			}
		})
	}
	if l := a.Listeners(); len(l) != 0 {
		t.Errorf("failed forwards left listeners: %+v", l)
	}
	if l := b.Listeners(); len(l) != 2 {
		t.Errorf("b has %d listeners, want the 2 it opened: %+v", len(l), l)
	}
}

// TestInviteHandlerIsBounded presents invites the way the API never
// would: a secret too long, and one that never ends. Both streams are
// reset rather than answered, and neither admits the peer.
func TestInviteHandlerIsBounded(t *testing.T) {
	b := newNodeWith(t, func(o *Options) { o.Timeouts.StreamOpen = config.D(200 * time.Millisecond) })
	ctx := context.Background()
	if _, err := b.listenReq(ctx, spec.Request{Protocol: "/x/echo", Target: server(t, echo), InviteOnly: true}); err != nil {
		t.Fatal(err)
	}
	_, tk := share(t, b, ShareRequest{Protocol: "/x/echo", Invite: true})
	h := anyHost(t)
	h.Peerstore().AddAddrs(b.Host().ID(), b.Host().Addrs(), peerstore.PermanentAddrTTL)

	present := func(payload []byte, closeWrite bool) (string, error) {
		sctx, cancel := context.WithTimeout(ctx, hangGuard)
		defer cancel()
		s, err := h.NewStream(sctx, b.Host().ID(), InviteProtocol)
		if err != nil {
			return "", err
		}
		defer s.Close()
		_ = s.SetDeadline(time.Now().Add(hangGuard))
		if _, err := s.Write(payload); err != nil {
			return "", err
		}
		if closeWrite {
			if err := s.CloseWrite(); err != nil {
				return "", err
			}
		}
		reply, err := io.ReadAll(s)
		return string(reply), err
	}
	// The real secret, with one byte too many after it.
	long := append(slices.Clone(tk.Secret), make([]byte, ticket.MaxSecretLen+1-len(tk.Secret))...)
	for _, tc := range []struct {
		name       string
		payload    []byte
		closeWrite bool
	}{
		{"secret too long", long, true},
		{"secret that never ends", tk.Secret, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			reply, err := present(tc.payload, tc.closeWrite)
			if !errors.Is(err, network.ErrReset) {
				t.Fatalf("reply %q, err %v; want the stream reset", reply, err)
			}
		})
	}
	if got := allowedPeers(t, b, "/x/echo"); len(got) != 0 {
		t.Fatalf("allowlist = %q after malformed presentations, want empty", got)
	}
	// A well-formed presentation from the same host is answered.
	reply, err := present(tk.Secret, true)
	if err != nil || reply != "ok\n" {
		t.Fatalf("well-formed presentation: reply %q, err %v; want \"ok\\n\"", reply, err)
	}
	if got := allowedPeers(t, b, "/x/echo"); !slices.Equal(got, []string{h.ID().String()}) {
		t.Fatalf("allowlist = %q, want the host that presented the invite", got)
	}
}

// TestInviteRacesAdmitOnePeer has several peers present one invite at
// once: exactly one is admitted.
func TestInviteRacesAdmitOnePeer(t *testing.T) {
	b := newNode(t)
	if _, err := b.listenReq(context.Background(), spec.Request{Protocol: "/x/echo", Target: server(t, echo), InviteOnly: true}); err != nil {
		t.Fatal(err)
	}
	_, tk := share(t, b, ShareRequest{Protocol: "/x/echo", Invite: true})
	peers := []testNode{newNode(t), newNode(t), newNode(t), newNode(t)}
	errs := make([]error, len(peers))
	var wg sync.WaitGroup
	for i, p := range peers {
		wg.Go(func() { _, errs[i] = forwardTicket(p, tk) })
	}
	wg.Wait()
	var admitted []string
	for i, err := range errs {
		switch {
		case err == nil:
			admitted = append(admitted, peers[i].id())
		case !errors.Is(err, ErrDenied) || !strings.Contains(err.Error(), "invite already used"):
			t.Errorf("peer %d: %v, want success or \"invite already used\"", i, err)
		}
	}
	if len(admitted) != 1 {
		t.Fatalf("%d peers admitted, want 1", len(admitted))
	}
	if got := allowedPeers(t, b, "/x/echo"); !slices.Equal(got, admitted) {
		t.Fatalf("allowlist = %q, want %q", got, admitted)
	}
}

// TestInviteDoesNotPassTheAccessPolicy: with a node-wide allow list, an
// invited peer that is not on it cannot connect to present its invite.
func TestInviteDoesNotPassTheAccessPolicy(t *testing.T) {
	a, friend := newNode(t), newNode(t)
	b := newNodeWith(t, func(o *Options) { o.Access = access.New([]peer.ID{mustPeer(t, friend.id())}, nil) })
	if _, err := b.listenReq(context.Background(), spec.Request{Protocol: "/x/echo", Target: server(t, echo), InviteOnly: true}); err != nil {
		t.Fatal(err)
	}
	_, tk := share(t, b, ShareRequest{Protocol: "/x/echo", Invite: true})
	if !strings.Contains(b.logs.String(), "access allow list is set") {
		t.Errorf("sharing an invite on a node with an allow list does not warn:\n%s", b.logs)
	}
	if _, err := forwardTicket(a, tk); !errors.Is(err, ErrDenied) || !strings.Contains(err.Error(), "access allow "+a.id()) {
		t.Fatalf("peer off the node's allow list: err = %v, want ErrDenied naming the peer ID to allow", err)
	}
	if got := allowedPeers(t, b, "/x/echo"); len(got) != 0 {
		t.Fatalf("allowlist = %q, want empty", got)
	}
	// The invite is still good for a peer the policy allows.
	fwd, err := forwardTicket(friend, tk)
	if err != nil {
		t.Fatal(err)
	}
	echoes(t, fwd)
}
