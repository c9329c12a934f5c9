package listen

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"syscall"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"

	"github.com/p2ptun/p2ptun/refusal"
	"github.com/p2ptun/p2ptun/registry"
	"github.com/p2ptun/p2ptun/socks"
	"github.com/p2ptun/p2ptun/streams"
	seam "github.com/p2ptun/p2ptun/tunnel"
)

// DefaultDialTimeout bounds the dial of the local target when
// Config.DialTimeout is zero.
const DefaultDialTimeout = 5 * time.Second

// Config describes one listener.
type Config struct {
	// Side holds the Protocol the handler is registered for, the stream
	// registry, the loggers (Limited logs refused and rate-limited peers)
	// and Register, called before the handler is set.
	seam.Side
	// Target is where each stream is bridged to: /ip4|ip6|dns*/…/tcp/PORT or /unix/PATH,
	// or …/udp/PORT for a UDP tunnel (udp.go).
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
	// ProxyProtocol, 1 or 2, writes a PROXY protocol header of that
	// version to the target before any stream data (see ProxyHeader); 0
	// writes none. A listener cannot have both it and ReportPeerID.
	ProxyProtocol byte
	// DialTimeout bounds the dial of Target; default DefaultDialTimeout.
	DialTimeout time.Duration
	// Dial dials the target; default a net.Dialer.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
	// PeerRate caps new streams per second from one peer (token bucket
	// with PeerBurst); zero means unlimited. It applies to the peers Allow
	// does not name: those let in by AllowAll, an invite or Listener.Allow.
	PeerRate  float64
	PeerBurst int
	// NamedPeerRate and NamedPeerBurst are PeerRate and PeerBurst for the
	// peers Allow names; zero NamedPeerRate means PeerRate and PeerBurst.
	NamedPeerRate  float64
	NamedPeerBurst int
	// Now tells the time for the rates' token buckets; default time.Now.
	Now func() time.Time
	// Datagrams frames a UDP target's flows: their idle timeout, largest
	// datagram and drop counter.
	Datagrams streams.FlowConfig
	// Egress, if set, makes the listener a SOCKS egress (egress.go):
	// each stream starts with a SOCKS5 request, dialled only if one of
	// these rules permits it; Target is unused. Lookup resolves names;
	// default socks.DefaultLookup.
	Egress socks.Rules
	Lookup socks.Lookup
}

// ErrNoAllowlist is returned by Validate for a listener that names no
// allowed peer and does not allow all.
var ErrNoAllowlist = errors.New("listener allows no peer: pass --allow PEER (repeatable), --allow-all, or --invite-only")

// Validate checks c and fills in defaults.
func (c *Config) Validate() error {
	if err := c.Check(registry.KindListen); err != nil {
		return err
	}
	if len(c.Egress) > 0 {
		c.Target = nil
	} else if len(c.Target) == 0 {
		return errors.New("listen: empty target")
	} else if _, _, err := manet.DialArgs(c.Target); err != nil {
		return fmt.Errorf("listen: target %s: %w", c.Target, err)
	}
	if !c.AllowAll && len(c.Allow) == 0 && !c.InviteOnly {
		return ErrNoAllowlist
	}
	if c.ProxyProtocol > 2 {
		return fmt.Errorf("listen: PROXY protocol version %d: want 1 or 2", c.ProxyProtocol)
	}
	if c.ProxyProtocol != 0 && c.ReportPeerID {
		return errors.New("listen: a PROXY header and a reported peer ID both go first: choose one")
	}
	if c.DialTimeout <= 0 {
		c.DialTimeout = DefaultDialTimeout
	}
	if c.Dial == nil {
		c.Dial = (&net.Dialer{}).DialContext
	}
	return nil
}

// Listener is a registered protocol handler: the far side of a tunnel,
// a seam.Kind whose connections arrive on libp2p's stream handler and
// whose Opener dials the local target. Create it with New, then Start;
// Close removes the handler and ends every stream it bridged.
type Listener struct {
	h     host.Host
	cfg   Config
	log   *slog.Logger
	net   string
	addr  string
	admit *Admission // the allowlist and per-peer rates
	t     *seam.Tunnel

	mu      sync.Mutex
	started bool // the handler is registered
}

// New validates cfg and returns a listener that is not yet serving.
func New(h host.Host, cfg Config) (*Listener, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	network, addr, _ := manet.DialArgs(cfg.Target)
	where := []any{"proto", string(cfg.Protocol), "target", cfg.Target.String()}
	if len(cfg.Egress) > 0 { // no target: what it may dial
		where = []any{"proto", string(cfg.Protocol), "permit", cfg.Egress.Strings()}
	}
	l := &Listener{
		h: h, cfg: cfg, net: network, addr: addr,
		admit: NewAdmission(Rules{
			Protocol: cfg.Protocol, Allow: cfg.Allow, AllowAll: cfg.AllowAll,
			PeerRate: cfg.PeerRate, PeerBurst: cfg.PeerBurst,
			NamedPeerRate: cfg.NamedPeerRate, NamedPeerBurst: cfg.NamedPeerBurst,
			Limited: cfg.Limited, Now: cfg.Now,
		}),
		log: cfg.Logger.With(where...),
	}
	t, err := seam.New(cfg.Config(registry.KindListen, l.log), (*kind)(l))
	if err != nil {
		return nil, err
	}
	l.t = t
	return l, nil
}

// Start registers the listener (Config.Register), then the stream
// handler, so that every stream is recorded under the listener's ID. The
// handler runs on libp2p's goroutines and does its work inline.
func (l *Listener) Start(context.Context) error { return l.t.Start() }

// StopAccepting refuses new streams from now on, resetting them with the
// Closing code so that a p2ptun peer learns the listener is going away,
// and leaves live streams running (a graceful shutdown drains them). The
// handler stays registered until Close.
func (l *Listener) StopAccepting() { l.t.StopAccepting() }

// Close removes the handler, aborts every live stream and waits for the
// handlers to return. It is idempotent.
func (l *Listener) Close() error { return l.t.Close() }

// kind is the Listener as the tunnel sees it.
type kind Listener

var _ seam.Kind = (*kind)(nil)

// Bind has nothing to claim: the registry's reservation of the protocol
// (Config.Register) is the claim, and Accept registers the handler.
func (k *kind) Bind() error { return nil }

func (k *kind) Accept(*seam.Tunnel) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.started = true
	k.h.SetStreamHandler(k.cfg.Protocol, (*Listener)(k).handle)
	return nil
}

// StopAccepting leaves the handler registered: the tunnel refuses new
// streams, and handle resets them with the Closing code.
func (k *kind) StopAccepting() {}

func (k *kind) Close() error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.started {
		k.h.RemoveStreamHandler(k.cfg.Protocol)
	}
	return nil
}

// Allow adds p to the allowlist, for the streams it opens from now on. It
// reports whether p was not on it yet. It is safe to call at any time.
func (l *Listener) Allow(p peer.ID) bool { return l.admit.Allow(p) }

func (l *Listener) handle(s network.Stream) {
	arrived := time.Now()
	if !l.t.Serve(arrived, func(ctx context.Context) (*seam.Link, error) { return l.open(ctx, s) }) {
		_ = refusal.Reset(s, refusal.Closing)
	}
}

// open checks the calling peer and dials the target for stream s.
func (l *Listener) open(ctx context.Context, s network.Stream) (*seam.Link, error) {
	who := s.Conn().RemotePeer().String() // encoded once for the logs, the record and the hooks
	if cause := l.admit.Admit(s, who); cause != "" {
		return nil, &seam.Failure{Peer: who, Cause: string(cause)}
	}
	if len(l.cfg.Egress) > 0 {
		return l.openEgress(ctx, s, who)
	}

	dctx, cancel := context.WithTimeout(ctx, l.cfg.DialTimeout)
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
		return nil, &seam.Failure{Peer: who, Cause: string(cause), Err: err}
	}
	local, ok := conn.(streams.HalfCloser)
	var stream streams.HalfCloser = s
	if u, isUDP := conn.(*net.UDPConn); isUDP {
		local, stream = l.udpFlow(u, s, who)
		ok = true
	}
	if !ok {
		_ = conn.Close()
		_ = s.Reset()
		l.log.Error("target connection cannot half-close; stream reset", "peer", who, "type", fmt.Sprintf("%T", conn))
		return nil, errors.New("target connection cannot half-close")
	}

	if err := l.writePreamble(local, s.Conn()); err != nil {
		// The target went away before the stream began (it accepted and
		// closed): to the peer, as to the client, a target that could
		// not be reached.
		_ = local.Close()
		l.log.Warn("target connection failed before the stream's first byte; stream reset", "peer", who, "err", err)
		_ = refusal.Reset(s, refusal.TargetDial)
		return nil, &seam.Failure{Peer: who, Cause: string(refusal.TargetDial), Err: err}
	}

	// Remote = the stream, Local = the target: bytes from the peer are "in".
	return &seam.Link{
		Remote: stream, Local: local,
		Record: registry.Stream{
			OriginAddress: "/p2p/" + who,
			TargetAddress: l.cfg.Target.String(),
			Peer:          who,
			Path:          streams.Path(s.Conn()),
		},
		Attrs: []any{"peer", who},
	}, nil
}
