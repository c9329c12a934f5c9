package access

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestAllowedRules(t *testing.T) {
	a, b, c := peer.ID("a"), peer.ID("b"), peer.ID("c")
	for _, tc := range []struct {
		name        string
		allow, deny []peer.ID
		want        map[peer.ID]bool
	}{
		{"open by default", nil, nil, map[peer.ID]bool{a: true, b: true}},
		{"allow list closes the rest", []peer.ID{a}, nil, map[peer.ID]bool{a: true, b: false}},
		{"deny only", nil, []peer.ID{b}, map[peer.ID]bool{a: true, b: false}},
		{"deny wins over allow", []peer.ID{a, b}, []peer.ID{b}, map[peer.ID]bool{a: true, b: false, c: false}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := New(tc.allow, tc.deny)
			for id, want := range tc.want {
				if got := p.Allowed(id); got != want {
					t.Errorf("Allowed(%s) = %v, want %v", id, got, want)
				}
			}
		})
	}
}

func TestEditing(t *testing.T) {
	a, b := peer.ID("a"), peer.ID("b")
	p := New(nil, nil)
	p.Allow(a)
	if p.Allowed(b) {
		t.Fatal("an allow list of one still lets others in")
	}
	p.Deny(a)
	if p.Allowed(a) {
		t.Fatal("deny did not override an earlier allow")
	}
	allow, deny := p.Lists()
	if len(allow) != 0 || len(deny) != 1 {
		t.Fatalf("lists = %v, %v; deny should move a off the allow list", allow, deny)
	}
	if !p.Revoke(a) || p.Revoke(a) {
		t.Fatal("Revoke should report whether the peer was listed")
	}
	if !p.Allowed(b) {
		t.Fatal("with both lists empty every peer is allowed again")
	}
}

func newHost(t *testing.T, opts ...libp2p.Option) host.Host {
	t.Helper()
	h, err := libp2p.New(append([]libp2p.Option{libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"), libp2p.DisableMetrics()}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	return h
}

func connect(from, to host.Host) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return from.Connect(ctx, peer.AddrInfo{ID: to.ID(), Addrs: to.Addrs()})
}

// With a real host: a peer off the allow list cannot complete a connection
// in either direction, and is reported once per attempt.
func TestGaterOnRealHosts(t *testing.T) {
	friend, stranger := newHost(t), newHost(t)
	refused := make(chan peer.ID, 10)
	p := New([]peer.ID{friend.ID()}, nil)
	p.Refused = func(id peer.ID, _ network.Direction) { refused <- id }
	node := newHost(t, libp2p.ConnectionGater(p))

	if err := connect(friend, node); err != nil {
		t.Fatalf("allowed peer could not connect: %v", err)
	}
	if friend.Network().Connectedness(node.ID()) != network.Connected {
		t.Fatal("allowed peer is not connected")
	}
	node.SetStreamHandler("/x/secret", func(s network.Stream) {
		s.Write([]byte("secret"))
		s.Close()
	})
	// The stranger's side of the handshake may finish before the node's
	// gater drops the connection, so Connect alone proves nothing; what
	// matters is that the stranger can never use it.
	_ = connect(stranger, node)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if s, err := stranger.NewStream(ctx, node.ID(), "/x/secret"); err == nil {
		buf := make([]byte, 6)
		if n, _ := s.Read(buf); n > 0 {
			t.Fatalf("a peer off the allow list read %q from the node", buf[:n])
		}
		s.Reset()
	}
	if id := <-refused; id != stranger.ID() {
		t.Fatalf("refused %s, want the stranger", id)
	}
	if node.Network().Connectedness(stranger.ID()) == network.Connected {
		t.Fatal("node holds a connection to the stranger")
	}
	if err := connect(node, stranger); err == nil {
		t.Fatal("node dialed a peer its policy disallows")
	}
}

// TestRefusedPeerReadsTheCode checks that a peer the policy refuses learns
// why: the node closes the connection with libp2p's ConnGated code, which
// reaches the peer's streams as a remote *network.ConnError, instead of a
// connection that came up and silently dropped.
func TestRefusedPeerReadsTheCode(t *testing.T) {
	stranger := newHost(t)
	p := New(nil, []peer.ID{stranger.ID()})
	node := newHost(t, libp2p.ConnectionGater(p))
	node.SetStreamHandler("/x/secret", func(s network.Stream) {
		s.Write([]byte("secret"))
		s.Close()
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	stranger.Peerstore().AddAddrs(node.ID(), node.Addrs(), time.Hour)
	// The stranger's side of the handshake may finish before the node
	// refuses the connection: what it reads on that connection is the code.
	c, err := stranger.Network().DialPeer(ctx, node.ID())
	if err == nil {
		var s network.Stream
		if s, err = c.NewStream(ctx); err == nil {
			buf := make([]byte, 6)
			var n int
			n, err = s.Read(buf)
			if n > 0 {
				t.Fatalf("a denied peer read %q from the node", buf[:n])
			}
			s.Reset()
		}
	}
	var ce *network.ConnError
	if !errors.As(err, &ce) || !ce.Remote || ce.ErrorCode != network.ConnGated {
		t.Fatalf("denied peer's stream: err = %v, want a remote ConnError with code ConnGated (0x%x)", err, network.ConnGated)
	}
}
