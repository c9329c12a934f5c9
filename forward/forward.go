package forward

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"

	"github.com/p2ptun/p2ptun/peerlog"
	"github.com/p2ptun/p2ptun/refusal"
	"github.com/p2ptun/p2ptun/registry"
	"github.com/p2ptun/p2ptun/socks"
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
	// Protocol is requested on every stream.
	Protocol protocol.ID
	// ListenAddr is the local TCP address to bind (port 0 picks a free one).
	ListenAddr ma.Multiaddr
	// Peer is the remote peer; its addresses must already be in the host's
	// peerstore or discoverable by the host.
	Peer peer.ID
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
	// Logger receives the forward's own events; default slog.Default().
	Logger *slog.Logger
	// Limited logs what may repeat for every client (failed stream opens
	// and refusals, by cause; resets during the redial backoff; running
	// out of file descriptors) at most once per interval; default once a
	// minute to Logger.
	Limited *peerlog.Logger
	// Streams records each live connection; required.
	Streams *registry.Streams
	// Register, if set, is called by Start once the listen address is
	// bound (with its real port) and before the first client is
	// accepted: it registers the forward and returns the listener ID
	// every stream record carries. Its error fails Start.
	Register func(bound ma.Multiaddr) (id uint64, err error)
	// Socks makes the forward a local SOCKS5 server (socks.go): each
	// client's CONNECT request is sent at the start of its stream, for
	// the peer's egress to check and dial.
	Socks bool
}

// Validate checks c and fills in defaults.
func (c *Config) Validate() error {
	if c.Protocol == "" {
		return errors.New("forward: empty protocol")
	}
	if len(c.ListenAddr) == 0 {
		return errors.New("forward: empty listen address")
	}
	if c.Peer == "" {
		return errors.New("forward: no peer")
	}
	if c.Streams == nil {
		return errors.New("forward: no stream registry")
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
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Limited == nil {
		c.Limited = peerlog.New(c.Logger, time.Minute, nil)
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

	redial redial
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
	sc := seam.Config{
		Kind: registry.KindForward, Protocol: string(cfg.Protocol),
		Streams: cfg.Streams, Logger: f.log,
	}
	if cfg.Register != nil {
		sc.Register = func() (uint64, error) { return cfg.Register(f.Addr()) }
	}
	t, err := seam.New(sc, (*kind)(f))
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
	var req *socks.Request
	if f.cfg.Socks {
		var err error
		if req, err = f.socksAccept(c, origin); err != nil {
			return nil, err
		}
	}

	s, err := f.openStream(ctx)
	if err != nil {
		cause := "stream_open"
		switch r := refusal.Of(err); {
		case r != nil:
			cause = string(r.Cause)
		case errors.Is(err, ErrUnreachable):
			cause = "unreachable"
		case errors.Is(err, ErrNoListener):
			cause = "no_listener"
		}
		// Every client fails the same way until the peer changes: log
		// once per cause and interval, not once per client.
		var bo *backoffError
		if errors.As(err, &bo) {
			f.cfg.Limited.Warn("redial "+f.laddr(), "client connection reset: the peer could not be reached moments ago, and the forward redials it only once its backoff is over",
				"proto", string(f.cfg.Protocol), "peer", f.peer, "laddr", f.laddr(), "err", err)
		} else {
			f.cfg.Limited.Warn("open "+cause+" "+f.laddr(), "stream open failed; client connection reset",
				"proto", string(f.cfg.Protocol), "peer", f.peer, "laddr", f.laddr(), "client", origin, "cause", cause, "err", err)
		}
		if req != nil {
			refuseSocks(c, err)
		} else {
			abortConn(c) // after the log: whoever sees the reset finds the line
		}
		return nil, &seam.Failure{Peer: f.peer, Cause: cause, Err: err}
	}
	var dest string
	if req != nil {
		if dest, err = f.socksConnect(s, c, req); err != nil {
			return nil, err
		}
	}

	// Remote = the stream, Local = the client: bytes from the peer are "in".
	return &seam.Link{
		Remote: s, Local: conn,
		Record: registry.Stream{
			OriginAddress: origin,
			TargetAddress: "/p2p/" + f.peer,
			Peer:          f.peer,
			Path:          streams.Path(s.Conn()),
			Destination:   dest,
		},
		Attrs: []any{"laddr", f.laddr(), "client", origin},
		Ended: func(err error) {
			if r := refusal.Of(err); r != nil {
				// The peer's listener refused the stream after the
				// protocol was agreed: the first read says why, whether
				// or not the client had sent anything.
				f.cfg.Limited.Warn("refused "+string(r.Cause)+" "+f.laddr(), "stream refused by the peer; client connection reset",
					"proto", string(f.cfg.Protocol), "peer", f.peer, "laddr", f.laddr(), "cause", string(r.Cause), "err", r)
			}
		},
	}, nil
}

// abortConn closes a TCP connection with a RST so the client sees a reset,
// not a clean end of data.
func abortConn(c net.Conn) {
	if tc, ok := c.(interface{ SetLinger(int) error }); ok {
		_ = tc.SetLinger(0)
	}
	_ = c.Close()
}
