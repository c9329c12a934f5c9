package access

import (
	"context"
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

// conn is the part of a network.Conn the gater looks at.
type conn struct {
	network.Conn
	peer peer.ID
	dir  network.Direction
}

func (c conn) RemotePeer() peer.ID { return c.peer }
func (c conn) Stat() network.ConnStats {
	return network.ConnStats{Stats: network.Stats{Direction: c.dir}}
}

// TestInboundRefusedOnceUpgraded checks where the gater refuses an inbound
// peer: not right after the handshake, where all libp2p can do is drop the
// connection, but once it is upgraded, where the swarm closes it with
// libp2p's ConnGated code before it serves any stream, so that the peer
// can tell it was refused. Outbound dials are still refused before they
// start, and each refusal is reported once.
func TestInboundRefusedOnceUpgraded(t *testing.T) {
	friend, stranger := peer.ID("friend"), peer.ID("stranger")
	var refused []peer.ID
	p := New(nil, []peer.ID{stranger})
	p.Refused = func(id peer.ID, _ network.Direction) { refused = append(refused, id) }

	if !p.InterceptSecured(network.DirInbound, stranger, nil) {
		t.Error("InterceptSecured dropped a denied inbound peer: it could not tell the peer why")
	}
	if ok, _ := p.InterceptUpgraded(conn{peer: stranger, dir: network.DirInbound}); ok {
		t.Fatal("InterceptUpgraded let a denied inbound peer's connection serve streams")
	}
	if p.InterceptPeerDial(stranger) || p.InterceptSecured(network.DirOutbound, stranger, nil) {
		t.Error("the gater lets this node dial a denied peer")
	}
	for _, dir := range []network.Direction{network.DirInbound, network.DirOutbound} {
		if ok, _ := p.InterceptUpgraded(conn{peer: friend, dir: dir}); !ok || !p.InterceptSecured(dir, friend, nil) {
			t.Errorf("an allowed peer's %s connection was refused", dir)
		}
	}
	if len(refused) != 3 {
		t.Errorf("refusals reported: %v, want the stranger 3 times (upgraded inbound, dial, secured outbound)", refused)
	}
}
