package node

import (
	"net"
	"sync"
	"testing"
	"time"

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
