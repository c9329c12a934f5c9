package forward

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync"
	"time"

	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"

	"github.com/p2ptun/p2ptun/streams"
	seam "github.com/p2ptun/p2ptun/tunnel"
)

// A UDP listen address (…/udp/PORT) makes the forward the near side of a
// UDP tunnel: one socket takes every client's datagrams, and each client
// address is a flow with a stream of its own, so that the replies that
// come back on it go to that client. The stream carries the flow's
// datagrams framed (streams.Flow); opening it, recording it and bridging
// it are the tunnel's lifecycle, as for a TCP client.

// flowQueue is how many datagrams a flow holds while its stream is opened
// or is slower than its client; more are dropped (streams.DropQueueFull).
const flowQueue = 256

// isUDP reports whether m is a UDP address (spec has checked that
// nothing rides on it).
func isUDP(m ma.Multiaddr) bool {
	network, _, err := manet.DialArgs(m)
	return err == nil && strings.HasPrefix(network, "udp")
}

// udpKind is a UDP forward as the tunnel sees it.
type udpKind struct {
	f *Forward

	mu      sync.Mutex
	sock    *net.UDPConn
	flows   map[netip.AddrPort]*clientFlow
	stopped bool // no new flows: StopAccepting or Close
}

var _ seam.Kind = (*udpKind)(nil)

// Bind binds the UDP socket; the forward's address is its real one.
func (k *udpKind) Bind() error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.stopped {
		return net.ErrClosed
	}
	if k.sock != nil {
		return nil
	}
	network, addr, err := manet.DialArgs(k.f.cfg.ListenAddr)
	if err != nil {
		return err
	}
	pc, err := net.ListenPacket(network, addr)
	if err != nil {
		return err
	}
	bound, err := manet.FromNetAddr(pc.LocalAddr())
	if err != nil {
		_ = pc.Close()
		return err
	}
	k.sock, k.flows = pc.(*net.UDPConn), make(map[netip.AddrPort]*clientFlow)
	f := k.f
	f.mu.Lock()
	f.addr, f.bound = bound, bound.String()
	f.log = f.log.With("laddr", f.bound)
	f.mu.Unlock()
	return nil
}

func (k *udpKind) Accept(t *seam.Tunnel) error {
	k.mu.Lock()
	sock := k.sock
	k.mu.Unlock()
	if sock == nil {
		return errors.New("forward: not bound")
	}
	t.Go(func() { k.readLoop(t, sock) })
	return nil
}

// StopAccepting starts no new flows; live ones go on, on the socket.
func (k *udpKind) StopAccepting() {
	k.mu.Lock()
	k.stopped = true
	k.mu.Unlock()
}

// Close closes the socket: the read loop ends, and the tunnel aborts the
// live flows.
func (k *udpKind) Close() error {
	k.mu.Lock()
	k.stopped = true
	sock := k.sock
	k.mu.Unlock()
	if sock == nil {
		return nil
	}
	return sock.Close()
}

// readLoop reads every client's datagrams and hands each to its flow,
// starting a flow for a new client address.
func (k *udpKind) readLoop(t *seam.Tunnel, sock *net.UDPConn) {
	buf := make([]byte, streams.MaxDatagram+1)
	for {
		n, from, err := sock.ReadFromUDPAddrPort(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) || t.Context().Err() != nil {
				return
			}
			k.f.cfg.Limited.Warn("udp read "+k.f.laddr(), "reading the UDP socket failed; retrying",
				"proto", string(k.f.cfg.Protocol), "laddr", k.f.laddr(), "err", err)
			select {
			case <-time.After(10 * time.Millisecond):
				continue
			case <-t.Context().Done():
				return
			}
		}
		k.deliver(t, from, append([]byte(nil), buf[:n]...))
	}
}

// deliver queues datagram d from client from on its flow.
func (k *udpKind) deliver(t *seam.Tunnel, from netip.AddrPort, d []byte) {
	k.mu.Lock()
	fl := k.flows[from]
	if fl != nil && !fl.isClosed() {
		k.mu.Unlock()
		if !fl.enqueue(d) {
			k.f.dropped(streams.DropQueueFull)
		}
		return
	}
	if k.stopped {
		k.mu.Unlock()
		return
	}
	fl = newClientFlow(k.sock, from)
	fl.enqueue(d)
	k.flows[from] = fl
	k.mu.Unlock()
	if !t.Go(func() { k.serve(t, fl) }) {
		k.remove(fl)
	}
}

// serve runs one flow through the tunnel's lifecycle.
func (k *udpKind) serve(t *seam.Tunnel, fl *clientFlow) {
	f := k.f
	served := t.Serve(time.Now(), func(ctx context.Context) (*seam.Link, error) {
		flow := streams.NewFlow(fl, f.cfg.Datagrams)
		l, err := f.link(ctx, fl.origin, flow, func(error) { k.remove(fl) }, nil)
		if err != nil {
			return nil, err
		}
		ended := l.Ended
		l.Ended = func(err error) {
			k.remove(fl)
			ended(err)
		}
		return l, nil
	})
	if !served {
		k.remove(fl)
	}
}

// remove closes fl and takes it out of the table: the client's next
// datagram starts a new flow.
func (k *udpKind) remove(fl *clientFlow) {
	_ = fl.Close()
	k.mu.Lock()
	if k.flows[fl.addr] == fl {
		delete(k.flows, fl.addr)
	}
	k.mu.Unlock()
}

// dropped counts a datagram the forward dropped.
func (f *Forward) dropped(reason string) {
	if f.cfg.Datagrams.Dropped != nil {
		f.cfg.Datagrams.Dropped(reason)
	}
}

// clientFlow is one client's datagrams on the forward's socket, as the
// streams.PacketConn of its Flow: Read takes them from the queue the read
// loop fills, Write sends to the client.
type clientFlow struct {
	sock   *net.UDPConn
	addr   netip.AddrPort
	origin string // addr as a multiaddr, for the stream's record
	q      chan []byte
	done   chan struct{}
	once   sync.Once

	mu       sync.Mutex
	deadline time.Time
	moved    chan struct{} // closed when the deadline moves
}

var _ streams.PacketConn = (*clientFlow)(nil)

func newClientFlow(sock *net.UDPConn, addr netip.AddrPort) *clientFlow {
	origin := addr.String()
	if m, err := manet.FromNetAddr(net.UDPAddrFromAddrPort(addr)); err == nil {
		origin = m.String()
	}
	return &clientFlow{
		sock: sock, addr: addr, origin: origin,
		q: make(chan []byte, flowQueue), done: make(chan struct{}), moved: make(chan struct{}),
	}
}

// enqueue queues d unless the queue is full.
func (c *clientFlow) enqueue(d []byte) bool {
	select {
	case c.q <- d:
		return true
	default:
		return false
	}
}

func (c *clientFlow) isClosed() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

func (c *clientFlow) Read(p []byte) (int, error) {
	for {
		c.mu.Lock()
		deadline, moved := c.deadline, c.moved
		c.mu.Unlock()
		var timer *time.Timer
		var expired <-chan time.Time
		if !deadline.IsZero() {
			d := time.Until(deadline)
			if d <= 0 {
				return 0, os.ErrDeadlineExceeded
			}
			timer = time.NewTimer(d)
			expired = timer.C
		}
		n, err, again := c.wait(p, expired, moved)
		if timer != nil {
			timer.Stop()
		}
		if !again {
			return n, err
		}
	}
}

// wait takes one datagram into p, unless the deadline expires, moves
// (again), or the flow is closed.
func (c *clientFlow) wait(p []byte, expired <-chan time.Time, moved <-chan struct{}) (n int, err error, again bool) {
	select {
	case d := <-c.q:
		return copy(p, d), nil, false
	case <-expired:
		return 0, os.ErrDeadlineExceeded, false
	case <-moved:
		return 0, nil, true
	case <-c.done:
		return 0, net.ErrClosed, false
	}
}

func (c *clientFlow) Write(p []byte) (int, error) {
	return c.sock.WriteToUDPAddrPort(p, c.addr)
}

func (c *clientFlow) SetReadDeadline(t time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.deadline = t
	close(c.moved)
	c.moved = make(chan struct{})
	return nil
}

// Close ends the flow; the socket is the forward's and stays open.
func (c *clientFlow) Close() error {
	c.once.Do(func() { close(c.done) })
	return nil
}
