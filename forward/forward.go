package forward

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"

	"github.com/p2ptun/p2ptun/forward/balance"
	"github.com/p2ptun/p2ptun/peerdial"
	"github.com/p2ptun/p2ptun/refusal"
	"github.com/p2ptun/p2ptun/registry"
	"github.com/p2ptun/p2ptun/streams"
	seam "github.com/p2ptun/p2ptun/tunnel"
)

// Defaults used when the matching Config field is zero.
const (
	DefaultDialTimeout       = 15 * time.Second
	DefaultStreamOpenTimeout = 10 * time.Second
	DefaultRedialMin         = time.Second
	DefaultRedialMax         = 10 * time.Second
)

// Config describes one forward.
type Config struct {
	// Side holds the Protocol requested on every stream, the stream
	// registry, the loggers and Register, called once the listen address
	// is bound (Addr has its real port) and before the first client is
	// accepted. Limited logs what may repeat for every client: failed
	// stream opens and refusals, by cause; resets during the redial
	// backoff; running out of file descriptors.
	seam.Side
	// ListenAddr is the local TCP address to bind (port 0 picks a free one),
	// or a UDP one for a UDP tunnel (udp.go).
	ListenAddr ma.Multiaddr
	// Peer is the remote peer; its addresses must already be in the host's
	// peerstore or discoverable by the host.
	Peer peer.ID
	// Peers, instead of Peer, are the peers of a forward with several, in
	// order of preference: each connection goes to the one Balance picks
	// among those that are up (package forward/balance). Two or more.
	Peers []peer.ID
	// Balance picks among Peers; default balance.Failover.
	Balance balance.Policy
	// PeerChanged, if set, is told when one of Peers goes down (err says
	// why) or comes back up (err is nil), in the order it happens. It must
	// not block.
	PeerChanged func(p peer.ID, up bool, err error)
	// RTT returns the measured round-trip time to a peer, 0 if none, for
	// balance.RTT and the peers' states; default the peerstore's.
	RTT func(peer.ID) time.Duration
	// DialTimeout bounds connecting to Peer when there is no connection;
	// default DefaultDialTimeout.
	DialTimeout time.Duration
	// StreamOpenTimeout bounds opening and negotiating each stream once
	// connected; default DefaultStreamOpenTimeout.
	StreamOpenTimeout time.Duration
	// AllowLimited lets streams use limited connections: circuit relays
	// that cap a relayed connection's time or data. Unlimited relayed
	// connections are always used.
	AllowLimited bool
	// Listen binds ListenAddr; default manet.Listen.
	Listen func(ma.Multiaddr) (manet.Listener, error)
	// RedialMin and RedialMax bound the redial backoff. A client that
	// finds no connection to Peer makes the forward dial it, one dial at a
	// time: clients arriving meanwhile share its outcome. After a failed
	// dial, clients are reset at once, without a dial, for RedialMin,
	// doubling with each failed dial up to RedialMax; the first client
	// after that dials again. A successful dial ends the backoff. Defaults
	// DefaultRedialMin and DefaultRedialMax.
	RedialMin, RedialMax time.Duration
	// Datagrams frames a UDP forward's flows: their idle timeout, largest
	// datagram and drop counter.
	Datagrams streams.FlowConfig
	// Socks makes the forward a local SOCKS5 server (socks.go): each
	// client's CONNECT request is sent at the start of its stream, for
	// the peer's egress to check and dial.
	Socks bool
}

// Validate checks c and fills in defaults.
func (c *Config) Validate() error {
	if err := c.Check(registry.KindForward); err != nil {
		return err
	}
	if len(c.ListenAddr) == 0 {
		return errors.New("forward: empty listen address")
	}
	if (c.Peer == "") == (len(c.Peers) == 0) {
		return errors.New("forward: give Peer or Peers")
	}
	if c.DialTimeout <= 0 {
		c.DialTimeout = DefaultDialTimeout
	}
	if c.StreamOpenTimeout <= 0 {
		c.StreamOpenTimeout = DefaultStreamOpenTimeout
	}
	if c.RedialMin <= 0 {
		c.RedialMin = DefaultRedialMin
	}
	if c.RedialMax <= 0 {
		c.RedialMax = DefaultRedialMax
	}
	c.RedialMax = max(c.RedialMax, c.RedialMin)
	if c.Listen == nil {
		c.Listen = manet.Listen
	}
	return nil
}

// Forward is the near side of a tunnel: a bound local listener, a
// seam.Kind whose accept loop takes TCP clients and whose Opener opens a
// stream to the peer. Create it with New, then Bind (optional) and Start;
// Close stops accepting, aborts every live stream and waits for them to
// end.
type Forward struct {
	h    host.Host
	cfg  Config
	peer string // cfg.Peer as text, encoded once for every stream record
	log  *slog.Logger
	t    *seam.Tunnel

	mu     sync.Mutex
	ln     manet.Listener
	addr   ma.Multiaddr // ln's address, read once by Bind
	bound  string       // addr as text, for logs; set by Bind before it accepts
	closed bool         // Close has unbound it for good

	redial peerdial.Gate
	udp    *udpKind     // a UDP forward's kind (udp.go); nil for TCP
	set    *balance.Set // the peers of a forward with several; nil with one
}

// New validates cfg and returns a forward that is not yet bound.
func New(h host.Host, cfg Config) (*Forward, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	f := &Forward{
		h: h, cfg: cfg,
		log:  cfg.Logger.With("proto", string(cfg.Protocol), "peer", cfg.Peer.String()),
		peer: cfg.Peer.String(),
	}
	var k seam.Kind = (*kind)(f)
	if isUDP(cfg.ListenAddr) {
		f.udp = &udpKind{f: f}
		k = f.udp
	}
	if len(cfg.Peers) > 0 {
		if f.cfg.RTT == nil {
			f.cfg.RTT = h.Peerstore().LatencyEWMA
		}
		f.set = newPeerSet(h, &f.cfg)
	}
	t, err := seam.New(cfg.Config(registry.KindForward, f.log), k)
	if err != nil {
		return nil, err
	}
	f.t = t
	return f, nil
}

// Bind binds the listen address without accepting yet: clients wait in
// the kernel's queue until Start accepts them. Start binds if Bind was
// not called. On error nothing is left bound.
func (f *Forward) Bind() error {
	if f.udp != nil {
		return f.udp.Bind()
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return net.ErrClosed
	}
	if f.ln != nil {
		return nil
	}
	ln, err := f.cfg.Listen(f.cfg.ListenAddr)
	if err != nil {
		return err
	}
	f.ln = ln
	f.addr = ln.Multiaddr()
	f.bound = f.addr.String()
	f.log = f.log.With("laddr", f.bound)
	return nil
}

// Start binds the listen address (unless Bind did), registers the forward
// (Config.Register) and starts accepting. On a bind error nothing is left
// bound; after any error, Close undoes the rest.
func (f *Forward) Start(context.Context) error { return f.t.Start() }

// Addr returns the bound address (with the real port when the configured
// one was 0), or nil before Bind.
func (f *Forward) Addr() ma.Multiaddr {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.addr
}

// StopAccepting unbinds the listen address, so that new connections are
// refused, and leaves live streams running (a graceful shutdown drains
// them).
func (f *Forward) StopAccepting() { f.t.StopAccepting() }

// Close stops accepting, aborts live streams and waits for every goroutine
// of the forward to return. It is idempotent.
func (f *Forward) Close() error {
	err := f.t.Close()
	if errors.Is(err, net.ErrClosed) {
		err = nil
	}
	return err
}

// kind is the Forward as the tunnel sees it.
type kind Forward

var _ seam.Kind = (*kind)(nil)

func (k *kind) Bind() error { return (*Forward)(k).Bind() }

func (k *kind) Accept(t *seam.Tunnel) error {
	f := (*Forward)(k)
	f.mu.Lock()
	ln := f.ln
	f.mu.Unlock()
	if ln == nil {
		return errors.New("forward: not bound")
	}
	if f.set != nil {
		if err := f.set.Start(t, f.connect); err != nil {
			return err
		}
	}
	t.Go(func() { f.acceptLoop(ln) })
	return nil
}

func (k *kind) StopAccepting() { _ = k.unbind(false) }

func (k *kind) Close() error { return k.unbind(true) }

func (k *kind) unbind(final bool) error {
	k.mu.Lock()
	ln := k.ln
	k.closed = k.closed || final
	k.mu.Unlock()
	if ln == nil {
		return nil
	}
	return ln.Close()
}

func (f *Forward) acceptLoop(ln manet.Listener) {
	// A descriptor held in reserve: out of descriptors, the loop gives it
	// up to take the waiting client and reset it, rather than leave the
	// client hanging in the kernel's accept queue until one is free.
	spare, _ := os.Open(os.DevNull)
	defer func() {
		if spare != nil {
			spare.Close()
		}
	}()
	var backoff time.Duration
	for {
		c, err := ln.Accept()
		if err != nil && outOfFDs(err) {
			if spare == nil {
				spare, _ = os.Open(os.DevNull)
			}
			if spare != nil {
				spare.Close()
				c, err = ln.Accept() // blocks until a client comes
				spare, _ = os.Open(os.DevNull)
				if err == nil && spare == nil {
					// Still none to spare: refuse this client now.
					abortConn(c)
					spare, _ = os.Open(os.DevNull)
					f.cfg.Limited.Warn("fds "+f.laddr(), "out of file descriptors: client connection reset; raise the daemon's open-file limit (ulimit -n, or LimitNOFILE= in its systemd unit)",
						"proto", string(f.cfg.Protocol), "laddr", f.laddr(), "client", c.RemoteMultiaddr().String())
					continue
				}
			}
		}
		if err != nil {
			if f.t.Context().Err() != nil || errors.Is(err, net.ErrClosed) {
				return
			}
			// Out of file descriptors and the like: log, back off, retry.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			if outOfFDs(err) {
				f.cfg.Limited.Warn("fds "+f.laddr(), "accept failed: out of file descriptors; retrying (raise the daemon's open-file limit: ulimit -n, or LimitNOFILE= in its systemd unit)",
					"proto", string(f.cfg.Protocol), "laddr", f.laddr(), "err", err)
			} else {
				f.log.Error("accept failed; retrying", "err", err, "backoff", backoff)
			}
			select {
			case <-time.After(backoff):
				continue
			case <-f.t.Context().Done():
				return
			}
		}
		backoff = 0
		if !f.t.Go(func() { f.handle(c) }) {
			abortConn(c)
			return
		}
	}
}

// outOfFDs reports whether err is the process or the system running out
// of file descriptors.
func outOfFDs(err error) bool {
	return errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE)
}

// laddr is the bound address, for logs: the accept loop and the
// connections' goroutines call it, after Start has set it.
func (f *Forward) laddr() string { return f.bound }

func (f *Forward) handle(c manet.Conn) {
	accepted := time.Now()
	if !f.t.Serve(accepted, func(ctx context.Context) (*seam.Link, error) { return f.open(ctx, c) }) {
		abortConn(c)
	}
}

// open opens a stream to the peer for client c.
func (f *Forward) open(ctx context.Context, c manet.Conn) (*seam.Link, error) {
	origin := c.RemoteMultiaddr().String()
	conn, ok := c.(streams.HalfCloser)
	if !ok {
		_ = c.Close()
		f.log.Error("accepted connection cannot half-close", "client", origin)
		return nil, errors.New("accepted connection cannot half-close")
	}
	if !f.cfg.Socks {
		return f.link(ctx, origin, conn, func(error) { abortConn(c) }, nil)
	}
	req, err := f.socksAccept(c, origin)
	if err != nil {
		return nil, err
	}
	l, err := f.link(ctx, origin, conn, func(err error) { refuseSocks(c, err) },
		func(s network.Stream) (string, error) { return f.socksConnect(s, c, req) })
	if fail := (*seam.Failure)(nil); errors.As(err, &fail) {
		fail.Destination = socksDest(req) // for the events: what was refused
	}
	return l, err
}

// link opens a stream to the peer for local, a client that origin names,
// and returns them linked. If no stream opens, refuse ends local its own
// way (a TCP RST, a SOCKS reply), after the log line. start, if set, runs
// a kind's exchange at the start of the stream (SOCKS: the request and
// the verdict) and returns the destination the record names.
func (f *Forward) link(ctx context.Context, origin string, local streams.HalfCloser, refuse func(error), start func(network.Stream) (string, error)) (*seam.Link, error) {
	s, err := f.openStream(ctx)
	out := new(atomic.Int64) // the record's BytesOut
	if cold, ok := s.(*peerdial.Cold); ok {
		var sent int64
		sent, err = f.handshake(ctx, cold, local, start == nil)
		out.Store(sent)
	}
	if err != nil {
		return nil, f.openFailed(origin, err, refuse)
	}
	var dest string
	if start != nil {
		if dest, err = start(s); err != nil {
			return nil, err
		}
	}

	to := f.peer
	if f.set != nil {
		to = s.Conn().RemotePeer().String() // the peer the policy picked
	}
	// Remote = the stream, Local = the client: bytes from the peer are "in".
	return &seam.Link{
		Remote: s, Local: local,
		Record: registry.Stream{
			OriginAddress: origin,
			TargetAddress: "/p2p/" + to,
			Peer:          to,
			Path:          streams.Path(s.Conn()),
			Destination:   dest,
			BytesOut:      out,
		},
		Attrs: []any{"laddr", f.laddr(), "client", origin},
		Ended: func(err error) {
			if r := refusal.Of(err); r != nil {
				// The peer's listener refused the stream after the
				// protocol was agreed: the first read says why, whether
				// or not the client had sent anything.
				f.cfg.Limited.Warn("refused "+string(r.Cause)+" "+f.laddr(), "stream refused by the peer; client connection reset",
					"proto", string(f.cfg.Protocol), "peer", to, "laddr", f.laddr(), "cause", string(r.Cause), "err", r)
			}
		},
	}, nil
}

// openFailed logs why no stream opened for the client origin, refuses
// the client (refuse) and returns the failure for the stream registry.
func (f *Forward) openFailed(origin string, err error, refuse func(error)) error {
	cause, key := "stream_open", "open "
	switch r := refusal.Of(err); {
	case r != nil:
		// The same refusal can reach a client at the open or at its
		// first read (Ended, in link), whichever the peer's reset
		// overtakes: one key, so it is logged once either way.
		cause, key = string(r.Cause), "refused "
	case errors.Is(err, peerdial.ErrUnreachable):
		cause = "unreachable"
	case errors.Is(err, peerdial.ErrNoListener):
		cause = "no_listener"
	}
	// Every client fails the same way until the peer changes: log
	// once per cause and interval, not once per client.
	var bo *peerdial.BackoffError
	if errors.As(err, &bo) {
		f.cfg.Limited.Warn("redial "+f.laddr(), "client connection reset: the peer could not be reached moments ago, and the forward redials it only once its backoff is over",
			"proto", string(f.cfg.Protocol), "peer", f.peer, "laddr", f.laddr(), "err", err)
	} else {
		f.cfg.Limited.Warn(key+cause+" "+f.laddr(), "stream open failed; client connection reset",
			"proto", string(f.cfg.Protocol), "peer", f.peer, "laddr", f.laddr(), "client", origin, "cause", cause, "err", err)
	}
	refuse(err) // after the log: whoever sees the reset finds the line
	return &seam.Failure{Peer: f.peer, Cause: cause, Err: err}
}

// abortConn closes a TCP connection with a RST so the client sees a reset,
// not a clean end of data.
func abortConn(c net.Conn) {
	if tc, ok := c.(interface{ SetLinger(int) error }); ok {
		_ = tc.SetLinger(0)
	}
	_ = c.Close()
}
