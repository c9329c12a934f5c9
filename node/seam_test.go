package node

import (
	"net"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/protocol"
	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"

	"github.com/p2ptun/p2ptun/internal/harness"
	"github.com/p2ptun/p2ptun/registry"
)

// firstAccept is a forward's listening socket that notes whether the
// forward was in the listener registry when its accept loop first asked
// for a client. Every Multiaddr call after the first waits (with a
// generous deadline) until that first Accept, so that a forward that
// starts accepting before it registers is caught doing so, every time.
type firstAccept struct {
	manet.Listener
	listed func(addr string) bool

	once      sync.Once
	accepted  chan struct{} // closed at the first Accept
	wasListed bool

	mu    sync.Mutex
	addrs int // Multiaddr calls
}

func (l *firstAccept) Multiaddr() ma.Multiaddr {
	l.mu.Lock()
	l.addrs++
	later := l.addrs > 1
	l.mu.Unlock()
	if later {
		select {
		case <-l.accepted:
		case <-time.After(30 * time.Second): // a forward that never accepts fails below
		}
	}
	return l.Listener.Multiaddr()
}

func (l *firstAccept) Accept() (manet.Conn, error) {
	l.once.Do(func() {
		l.wasListed = l.listed(l.Listener.Multiaddr().String())
		close(l.accepted)
	})
	return l.Listener.Accept()
}

// A forward is in the listener registry before it serves its first
// client, so every client is recorded under the forward's own ID (it used
// to bind and accept first and register after: a client in that window was
// recorded under listener 0).
func TestForwardRegisteredBeforeItServes(t *testing.T) {
	var (
		mu   sync.Mutex
		lns  []*firstAccept
		self *Node
	)
	a := newNodeWith(t, func(o *Options) {
		o.BindForward = func(addr ma.Multiaddr) (manet.Listener, error) {
			ln, err := manet.Listen(addr)
			if err != nil {
				return nil, err
			}
			fa := &firstAccept{Listener: ln, accepted: make(chan struct{}), listed: func(addr string) bool {
				for _, l := range self.listeners.List() {
					if l.Kind == registry.KindForward && l.ListenAddress == addr {
						return true
					}
				}
				return false
			}}
			mu.Lock()
			lns = append(lns, fa)
			mu.Unlock()
			return fa, nil
		}
	})
	self = a.Node
	b := newNode(t)
	target := server(t, echo)
	addr := tunnel(t, a, b, "/x/seam", target)

	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	harness.Echoes(t, c, "hello") // the stream is recorded before bytes flow
	mu.Lock()
	if len(lns) != 1 {
		mu.Unlock()
		t.Fatalf("the forward bound %d sockets through Options.BindForward; want 1", len(lns))
	}
	fa := lns[0]
	mu.Unlock()
	<-fa.accepted
	if !fa.wasListed {
		t.Errorf("the forward accepted its first client before it was in the listener registry")
	}
	fwds := a.listeners.List()
	if len(fwds) != 1 {
		t.Fatalf("listeners = %+v; want the one forward", fwds)
	}
	rec := a.Streams()
	if len(rec) != 1 {
		t.Fatalf("streams = %+v; want the one client's", rec)
	}
	if rec[0].ListenerID != fwds[0].ID {
		t.Errorf("stream recorded under listener %d; want the forward's ID %d", rec[0].ListenerID, fwds[0].ID)
	}
}

// handlerWatch is a node's host that notes, when a stream handler is set
// for proto, whether the listener on proto was in the listener registry.
type handlerWatch struct {
	host.Host
	proto  protocol.ID
	listed func() bool
	set    chan bool // one value: listed when the handler was set
}

func (h *handlerWatch) SetStreamHandler(p protocol.ID, handle network.StreamHandler) {
	if p == h.proto {
		h.set <- h.listed()
	}
	h.Host.SetStreamHandler(p, handle)
}

// A listener is in the listener registry (committed through the seam's
// Config.Register, as a forward is) before its stream handler is set, so
// no stream is served before it is listed, and every stream is recorded
// under its ID (it used to be committed only after its handler was set).
func TestListenRegisteredBeforeItServes(t *testing.T) {
	a, b := newNode(t), newNode(t)
	const proto = "/x/seam-listen"
	w := &handlerWatch{Host: b.host, proto: proto, set: make(chan bool, 1), listed: func() bool {
		for _, l := range b.listeners.List() {
			if l.Kind == registry.KindListen && l.Protocol == proto {
				return true
			}
		}
		return false
	}}
	b.host = w
	addr := tunnel(t, a, b, proto, server(t, echo))
	if !<-w.set {
		t.Errorf("the listener's stream handler was set before it was in the listener registry")
	}
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	harness.Echoes(t, c, "hello")
	lis := b.Listeners()
	rec := b.Streams()
	if len(lis) != 1 || len(rec) != 1 || rec[0].ListenerID != lis[0].ID {
		t.Fatalf("listeners %+v, streams %+v; want the one stream under the listener's ID", lis, rec)
	}
}
