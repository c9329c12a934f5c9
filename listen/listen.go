package listen

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"

	"github.com/p2ptun/p2ptun/peerlog"
	"github.com/p2ptun/p2ptun/refusal"
	"github.com/p2ptun/p2ptun/registry"
	"github.com/p2ptun/p2ptun/streams"
)

// DefaultDialTimeout bounds the dial of the local target when
// Config.DialTimeout is zero.
const DefaultDialTimeout = 5 * time.Second

// Config describes one listener.
type Config struct {
	// Protocol is the libp2p protocol the handler is registered for.
	Protocol protocol.ID
	// Target is where each stream is bridged to: /ip4|ip6|dns*/…/tcp/PORT or /unix/PATH.
	Target ma.Multiaddr
	// Allow lists the peers that may open streams. Ignored when AllowAll.
	Allow []peer.ID
	// AllowAll accepts every peer that can reach the node.
	AllowAll bool
	// InviteOnly lets Allow start empty: peers are added at runtime with
	// Listener.Allow (when they redeem an invite).
	InviteOnly bool
	// ReportPeerID writes "<base58 peer ID>\n" to the target before any
	// stream data, as kubo's `ipfs p2p listen --report-peer-id` does.
	ReportPeerID bool
	// DialTimeout bounds the dial of Target; default DefaultDialTimeout.
	DialTimeout time.Duration
	// Dial dials the target; default a net.Dialer.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
	// PeerRate caps new streams per second from one peer (token bucket
	// with PeerBurst); zero means unlimited.
	PeerRate  float64
	PeerBurst int
	// Limited logs refused and rate-limited peers, once per peer per
	// interval; default: a one-minute interval on Logger.
	Limited *peerlog.Logger
	// Logger receives failed target dials and stream events; default
	// slog.Default().
	Logger *slog.Logger
	// Streams records each live connection; required.
	Streams *registry.Streams
	// ListenerID is stored in each stream record.
	ListenerID uint64
}

// ErrNoAllowlist is returned by Validate for a listener that names no
// allowed peer and does not allow all.
var ErrNoAllowlist = errors.New("listener allows no peer: pass --allow PEER (repeatable), --allow-all, or --invite-only")

// Validate checks c and fills in defaults.
func (c *Config) Validate() error {
	if c.Protocol == "" {
		return errors.New("listen: empty protocol")
	}
	if len(c.Target) == 0 {
		return errors.New("listen: empty target")
	}
	if _, _, err := manet.DialArgs(c.Target); err != nil {
		return fmt.Errorf("listen: target %s: %w", c.Target, err)
	}
	if !c.AllowAll && len(c.Allow) == 0 && !c.InviteOnly {
		return ErrNoAllowlist
	}
	if c.Streams == nil {
		return errors.New("listen: no stream registry")
	}
	if c.DialTimeout <= 0 {
		c.DialTimeout = DefaultDialTimeout
	}
	if c.Dial == nil {
		c.Dial = (&net.Dialer{}).DialContext
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Limited == nil {
		c.Limited = peerlog.New(c.Logger, time.Minute, nil)
	}
	return nil
}

// Listener is a registered protocol handler. Create it with New, then
// Start; Close removes the handler and ends every stream it bridged.
type Listener struct {
	h      host.Host
	cfg    Config
	log    *slog.Logger
	net    string
	addr   string
	rates  *peerRates
	ctx    context.Context // lifetime of the listener, cancelled by Close
	cancel context.CancelFunc

	allowMu sync.RWMutex
	allow   map[peer.ID]bool // Config.Allow, and the peers Allow adds

	mu       sync.Mutex
	started  bool
	draining bool // StopAccepting was called: new streams are refused
	closed   bool
	wg       sync.WaitGroup // one per running handler
}

// New validates cfg and returns a listener that is not yet serving.
func New(h host.Host, cfg Config) (*Listener, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	network, addr, _ := manet.DialArgs(cfg.Target)
	allow := make(map[peer.ID]bool, len(cfg.Allow))
	for _, p := range cfg.Allow {
		allow[p] = true
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Listener{
		h: h, cfg: cfg, net: network, addr: addr, ctx: ctx, cancel: cancel,
		rates: newPeerRates(cfg.PeerRate, cfg.PeerBurst),
		log:   cfg.Logger.With("proto", string(cfg.Protocol), "target", cfg.Target.String()),
		allow: allow,
	}, nil
}

// Start registers the stream handler. The handler runs on libp2p's
// goroutines and does its work inline.
func (l *Listener) Start(context.Context) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return net.ErrClosed
	}
	l.started = true
	l.h.SetStreamHandler(l.cfg.Protocol, l.handle)
	return nil
}

// StopAccepting refuses new streams from now on, resetting them with the
// Closing code so that a p2ptun peer learns the listener is going away,
// and leaves live streams running (a graceful shutdown drains them). The
// handler stays registered until Close.
func (l *Listener) StopAccepting() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.draining = true
}

// Close removes the handler, aborts every live stream and waits for the
// handlers to return. It is idempotent.
func (l *Listener) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	l.closed = true
	if l.started {
		l.h.RemoveStreamHandler(l.cfg.Protocol)
	}
	l.mu.Unlock()
	l.cancel()
	l.wg.Wait()
	return nil
}

// enter registers a running handler unless the listener is closed or
// draining.
func (l *Listener) enter() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed || l.draining {
		return false
	}
	l.wg.Add(1)
	return true
}

// Allow adds p to the allowlist, for the streams it opens from now on. It
// reports whether p was not on it yet. It is safe to call at any time.
func (l *Listener) Allow(p peer.ID) bool {
	l.allowMu.Lock()
	defer l.allowMu.Unlock()
	if l.allow[p] {
		return false
	}
	l.allow[p] = true
	return true
}

func (l *Listener) allowed(p peer.ID) bool {
	if l.cfg.AllowAll {
		return true
	}
	l.allowMu.RLock()
	defer l.allowMu.RUnlock()
	return l.allow[p]
}

func (l *Listener) handle(s network.Stream) {
	if !l.enter() {
		_ = refusal.Reset(s, refusal.Closing)
		return
	}
	bridged := false
	defer func() {
		if !bridged {
			l.wg.Done()
		}
	}()

	arrived := time.Now()
	remote := s.Conn().RemotePeer()
	who := remote.String() // encoded once for the logs, the record and the hooks
	fail := func(cause string, err error) {
		l.cfg.Streams.Fail(registry.Failure{
			ListenerID: l.cfg.ListenerID, Kind: registry.KindListen, Protocol: string(l.cfg.Protocol),
			Peer: who, Cause: cause, Err: err,
		})
	}
	if !l.allowed(remote) {
		l.cfg.Limited.Warn("refused "+string(l.cfg.Protocol)+" "+who,
			"refused stream: peer is not on this listener's allowlist",
			"peer", who, "proto", string(l.cfg.Protocol))
		_ = refusal.Reset(s, refusal.Denied)
		fail(string(refusal.Denied), nil)
		return
	}
	if !l.rates.allow(remote) {
		l.cfg.Limited.Warn("rate "+string(l.cfg.Protocol)+" "+who,
			"refused stream: peer opens streams faster than limits.peer_stream_rate",
			"peer", who, "proto", string(l.cfg.Protocol))
		_ = refusal.Reset(s, refusal.RateLimited)
		fail(string(refusal.RateLimited), nil)
		return
	}

	dctx, cancel := context.WithTimeout(l.ctx, l.cfg.DialTimeout)
	conn, err := l.cfg.Dial(dctx, l.net, l.addr)
	cancel()
	if err != nil {
		if errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) {
			// Likely for every stream until descriptors are freed.
			l.cfg.Limited.Warn("fds "+string(l.cfg.Protocol),
				"target dial failed: out of file descriptors; stream reset (raise the daemon's open-file limit: ulimit -n, or LimitNOFILE= in its systemd unit)",
				"proto", string(l.cfg.Protocol), "target", l.addr, "peer", who, "err", err)
		} else {
			l.log.Warn("target dial failed; stream reset", "peer", who, "err", err)
		}
		cause := refusal.TargetDial
		var ne net.Error
		if errors.Is(err, context.DeadlineExceeded) || errors.As(err, &ne) && ne.Timeout() {
			cause = refusal.TargetTimeout
		}
		_ = refusal.Reset(s, cause)
		fail(string(cause), err)
		return
	}
	local, ok := conn.(streams.HalfCloser)
	if !ok {
		_ = conn.Close()
		_ = s.Reset()
		l.log.Error("target connection cannot half-close; stream reset", "peer", who, "type", fmt.Sprintf("%T", conn))
		return
	}

	if l.cfg.ReportPeerID {
		if _, err := fmt.Fprintf(local, "%s\n", remote); err != nil {
			_ = local.Close()
			_ = s.Reset()
			l.log.Warn("writing peer ID to target failed; stream reset", "peer", who, "err", err)
			return
		}
	}

	rec := &registry.Stream{
		ListenerID:    l.cfg.ListenerID,
		Kind:          registry.KindListen,
		Protocol:      string(l.cfg.Protocol),
		OriginAddress: "/p2p/" + who,
		TargetAddress: l.cfg.Target.String(),
		Peer:          who,
		Path:          streams.Path(s.Conn()),
		OpenedAt:      time.Now(),
		BytesIn:       new(atomic.Int64),
		BytesOut:      new(atomic.Int64),
	}
	rec.Setup = rec.OpenedAt.Sub(arrived)
	// a = the remote stream, b = the local target: a→b is "in".
	p := streams.New(s, local, streams.Counters{AtoB: rec.BytesIn, BtoA: rec.BytesOut})
	id, finish := l.cfg.Streams.Open(l.ctx, rec, p.Abort)
	l.log.Debug("stream open", "peer", who, "stream", id)
	// The pipe's goroutines outlive this one and take over its place in
	// l.wg.
	bridged = true
	p.Start(func(nin, nout int64, err error) {
		defer l.wg.Done()
		l.log.Debug("stream ended", "peer", who, "stream", id, "in", nin, "out", nout, "err", err)
		finish(err)
	})
}
