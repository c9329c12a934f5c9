package node

import (
	"context"
	"crypto/rand"
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"testing"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/pnet"

	"github.com/p2ptun/p2ptun/access"
	"github.com/p2ptun/p2ptun/config"
	"github.com/p2ptun/p2ptun/internal/harness"
	"github.com/p2ptun/p2ptun/spec"
)

func peerOf(t *testing.T, n testNode) peer.ID {
	t.Helper()
	id, err := peer.Decode(n.id())
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func TestNodeWideAllowList(t *testing.T) {
	friend, stranger := newNode(t), newNode(t)
	b := newNodeWith(t, func(o *Options) { o.Access = access.New([]peer.ID{peerOf(t, friend)}, nil) })
	ctx := context.Background()
	target := server(t, echo)
	// The listener itself would let anyone in: the node-wide policy decides.
	if _, err := b.listenReq(ctx, spec.Request{Protocol: "/x/web", Target: target, AllowAll: true}); err != nil {
		t.Fatal(err)
	}
	l, err := friend.forwardReq(ctx, spec.Request{Protocol: "/x/web", ListenAddress: "127.0.0.1:0", Peer: b.fullAddr()})
	if err != nil {
		t.Fatal(err)
	}
	openStream(t, hostPort(t, l.ListenAddress))

	l, err = stranger.forwardReq(ctx, spec.Request{Protocol: "/x/web", ListenAddress: "127.0.0.1:0", Peer: b.fullAddr(), Lazy: true})
	if err != nil {
		t.Fatal(err)
	}
	for range 20 {
		expectReset(t, hostPort(t, l.ListenAddress))
	}
	// The node's own policy also governs where it forwards to.
	_, err = b.forwardReq(ctx, spec.Request{Protocol: "/x/web", ListenAddress: "127.0.0.1:0", Peer: stranger.fullAddr()})
	if !errors.Is(err, ErrDenied) || !strings.Contains(err.Error(), "access allow") {
		t.Fatalf("forward to a peer the policy refuses: err = %v, want ErrDenied saying how to allow it", err)
	}
	if n := strings.Count(b.logs.String(), "not allowed by the node's access policy"); n != 1 {
		t.Fatalf("want the refused peer logged once per interval, got %d lines:\n%s", n, b.logs)
	}
}

func TestAccessEditsPersistCloseAndRollBack(t *testing.T) {
	var (
		mu    sync.Mutex
		saved []config.Access
		fail  error
	)
	a := newNode(t)
	b := newNodeWith(t, func(o *Options) {
		o.SaveAccess = func(acc config.Access) error {
			mu.Lock()
			defer mu.Unlock()
			if fail != nil {
				return fail
			}
			saved = append(saved, acc)
			return nil
		}
	})
	ctx := context.Background()
	c := openStream(t, tunnel(t, a, b, "/x/web", server(t, echo)))

	list, err := b.AccessAllow(ctx, a.id())
	if err != nil || len(list.Allow) != 1 || list.Allow[0] != a.id() {
		t.Fatalf("allow: %+v, %v", list, err)
	}
	// Denying a connected peer closes its connection now.
	if _, err := b.AccessDeny(ctx, a.id()); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadAll(c); !harness.IsReset(err) {
		t.Fatalf("client of a denied peer: err = %v, want a reset", err)
	}
	mu.Lock()
	got := saved
	mu.Unlock()
	if len(got) != 2 || len(got[1].Deny) != 1 || len(got[1].Allow) != 0 {
		t.Fatalf("saved policies = %+v, want allow then deny (moved off allow)", got)
	}

	mu.Lock()
	fail = errors.New("disk full")
	mu.Unlock()
	if _, err := b.AccessRevoke(ctx, a.id()); err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Fatalf("revoke with a failing save: err = %v", err)
	}
	if l := b.Access(); len(l.Deny) != 1 {
		t.Fatalf("a failed save must leave the policy as it was, got %+v", l)
	}
	mu.Lock()
	fail = nil
	mu.Unlock()
	if _, err := b.AccessRevoke(ctx, a.id()); err != nil {
		t.Fatal(err)
	}
	if _, err := b.AccessRevoke(ctx, a.id()); !errors.Is(err, ErrNotFound) {
		t.Fatalf("revoking an unlisted peer: err = %v, want ErrNotFound", err)
	}
	if _, err := b.AccessAllow(ctx, "nope"); !errors.Is(err, ErrUsage) {
		t.Fatalf("bad peer ID: err = %v, want ErrUsage", err)
	}
}

func testPSK(t *testing.T) pnet.PSK {
	t.Helper()
	k := make([]byte, 32)
	if _, err := rand.Read(k); err != nil {
		t.Fatal(err)
	}
	return k
}

func TestPrivateNetwork(t *testing.T) {
	psk := testPSK(t)
	withKey := func(k pnet.PSK) func(*Options) { return func(o *Options) { o.SwarmKey = k } }
	a, b := newNodeWith(t, withKey(psk)), newNodeWith(t, withKey(psk))
	openStream(t, tunnel(t, a, b, "/x/private", server(t, echo)))

	ctx := context.Background()
	for name, outsider := range map[string]testNode{
		"no key":    newNode(t),
		"other key": newNodeWith(t, withKey(testPSK(t))),
	} {
		_, err := outsider.forwardReq(ctx, spec.Request{Protocol: "/x/private", ListenAddress: "127.0.0.1:0", Peer: b.fullAddr()})
		if !errors.Is(err, ErrUnreachable) {
			t.Errorf("%s: forward into the private network: err = %v, want ErrUnreachable", name, err)
		}
	}
}

// go-libp2p's default limits admit about 75 streams per peer; p2ptun's
// defaults must let one peer hold 1,000 tunnels on one listener.
func TestDefaultLimitsHoldAThousandTunnels(t *testing.T) {
	const tunnels = 1000
	a, b := newNode(t), newNode(t)
	fwd := tunnel(t, a, b, "/x/many", server(t, echo))
	conns := make([]net.Conn, 0, tunnels)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for i := range tunnels {
		c, err := net.Dial("tcp", fwd)
		if err != nil {
			t.Fatalf("tunnel %d: %v", i, err)
		}
		conns = append(conns, c)
		if _, err := c.Write([]byte("ping")); err != nil {
			t.Fatalf("tunnel %d: %v", i, err)
		}
	}
	// Every one is open at once and echoes.
	for i, c := range conns {
		buf := make([]byte, 4)
		if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "ping" {
			t.Fatalf("tunnel %d of %d: %q, %v", i, tunnels, buf, err)
		}
	}
	if n := len(b.Streams()); n != tunnels {
		t.Fatalf("listener holds %d streams, want %d", n, tunnels)
	}
	if strings.Contains(b.logs.String(), "resource limit reached") {
		t.Fatalf("default limits refused streams:\n%s", b.logs)
	}
}
