package invite

import (
	"cmp"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"

	"github.com/p2ptun/p2ptun/oneline"
	"github.com/p2ptun/p2ptun/peerdial"
	"github.com/p2ptun/p2ptun/peerlog"
	"github.com/p2ptun/p2ptun/refusal"
	"github.com/p2ptun/p2ptun/registry"
	"github.com/p2ptun/p2ptun/ticket"
)

// Protocol is the internal protocol on which a forwarding node presents
// an invite's secret to the listening node. It lives under /p2ptun/,
// which no tunnel may use.
const Protocol = protocol.ID("/p2ptun/invite/1.0.0")

// DefaultTTL is how long an invite stays redeemable unless told
// otherwise.
const DefaultTTL = time.Hour

// Caps on open invite streams, node-wide and per peer: any peer may
// present an invite; a legitimate one presents one at a time, so a few
// open streams each, and a few dozen in all, are plenty.
const (
	MaxStreams        = 64
	MaxStreamsPerPeer = 2
)

const (
	// secretLen is the size of the secrets a Book makes.
	secretLen = 32
	// maxInvites bounds the invites a Book keeps; past it, expired ones
	// are dropped, and if none has expired, Make fails.
	maxInvites = 4096
	// maxVerdictLen bounds the reply Present reads.
	maxVerdictLen = 64
)

// Invite stream verdicts: the listening node writes one, and a newline,
// after reading the secret.
const (
	verdictOK      = "ok"      // the peer is (now) on the listener's allowlist
	verdictUsed    = "used"    // another peer redeemed the invite
	verdictExpired = "expired" // the invite's TTL has passed
	verdictUnknown = "unknown" // no such invite: never made, dropped with its listener, or made before a restart
)

// Config configures a Book.
type Config struct {
	// Now tells the time for expiry; default time.Now.
	Now func() time.Time
	// ReadTimeout bounds reading a presented secret and writing the
	// verdict (the node's stream-open timeout).
	ReadTimeout time.Duration
	// Logger logs invites made and redeemed; default slog.Default().
	Logger *slog.Logger
	// Limited logs refused presentations, once per peer per interval;
	// default once a minute to Logger.
	Limited *peerlog.Logger
}

// invite is one outstanding or redeemed invite; a Book keeps its
// secret's hash only.
type invite struct {
	listenerID uint64
	proto      string
	expires    time.Time
	usedBy     peer.ID // "" until redeemed
}

// Book holds a node's invites, by the SHA-256 of their secrets, and the
// listeners they may name. Its Handle serves Protocol. The zero Book is
// not usable; make one with New.
type Book struct {
	cfg Config

	mu       sync.Mutex
	allow    map[uint64]func(peer.ID) error // serving listeners, by registry ID
	invites  map[[sha256.Size]byte]*invite
	closed   bool
	handlers sync.WaitGroup // running Handle calls
}

// New returns an empty Book.
func New(cfg Config) *Book {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Limited == nil {
		cfg.Limited = peerlog.New(cfg.Logger, time.Minute, nil)
	}
	return &Book{cfg: cfg, allow: make(map[uint64]func(peer.ID) error), invites: make(map[[sha256.Size]byte]*invite)}
}

// Serve records a running listener, by its registry ID, so that invites
// can name it; allow puts a peer on its allowlist (and the registry's
// record of it). The returned func forgets the listener and its invites.
func (b *Book) Serve(listenerID uint64, allow func(peer.ID) error) (forget func()) {
	b.mu.Lock()
	b.allow[listenerID] = allow
	b.mu.Unlock()
	return func() {
		b.mu.Lock()
		defer b.mu.Unlock()
		delete(b.allow, listenerID)
		for h, inv := range b.invites {
			if inv.listenerID == listenerID {
				delete(b.invites, h)
			}
		}
	}
}

// Draft is a new invite's secret and expiry, not yet redeemable: Add
// makes it so, once the ticket that carries it is made.
type Draft struct {
	Secret  []byte
	Expires time.Time
}

// Draft makes a new secret that expires ttl from now.
func (b *Book) Draft(ttl time.Duration) Draft {
	d := Draft{Secret: make([]byte, secretLen), Expires: b.cfg.Now().Add(ttl)}
	rand.Read(d.Secret) // crypto/rand.Read never returns an error
	return d
}

// Add makes d an invite to the served listener listenerID (on proto, for
// logs and errors). It fails with registry.ErrNotFound when that
// listener is not served (it closed meanwhile), and when the Book holds
// too many unexpired invites.
func (b *Book) Add(listenerID uint64, proto string, d Draft) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.allow[listenerID] == nil {
		return fmt.Errorf("%w: the listener on %s closed while the invite was made", registry.ErrNotFound, proto)
	}
	if len(b.invites) >= maxInvites {
		now := b.cfg.Now()
		for h, x := range b.invites {
			if !now.Before(x.expires) {
				delete(b.invites, h)
			}
		}
	}
	if len(b.invites) >= maxInvites {
		return fmt.Errorf("%d invites are open already: let some expire (or close their listeners) first", maxInvites)
	}
	b.invites[sha256.Sum256(d.Secret)] = &invite{listenerID: listenerID, proto: proto, expires: d.Expires}
	return nil
}

// Len says how many invites the Book holds, redeemed ones included.
func (b *Book) Len() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.invites)
}

// redeem decides on an invite presented by remote: the first peer to
// present an unexpired invite joins its listener's allowlist. The same
// peer may present it again, and is told it is in, without any change;
// any other peer is refused.
//
// Invites are found by the SHA-256 of their secret: the lookup compares
// hashes, so its timing can tell a guesser nothing about a secret.
func (b *Book) redeem(remote peer.ID, secret []byte) string {
	h := sha256.Sum256(secret)
	b.mu.Lock()
	defer b.mu.Unlock()
	inv := b.invites[h]
	switch {
	case inv == nil:
		return verdictUnknown
	case inv.usedBy == remote:
		return verdictOK
	case inv.usedBy != "":
		return verdictUsed
	case !b.cfg.Now().Before(inv.expires):
		return verdictExpired
	}
	allow := b.allow[inv.listenerID]
	if allow == nil || allow(remote) != nil {
		delete(b.invites, h)
		return verdictUnknown
	}
	inv.usedBy = remote
	b.cfg.Logger.Info("invite redeemed; peer added to the listener's allowlist", "proto", inv.proto, "peer", remote.String())
	return verdictOK
}

// Handle serves Protocol: it reads a secret (bounded in size and time),
// answers with a verdict line, and closes the stream. After Close it
// resets the stream.
func (b *Book) Handle(s network.Stream) {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		_ = s.Reset()
		return
	}
	b.handlers.Add(1)
	b.mu.Unlock()
	defer b.handlers.Done()
	remote := s.Conn().RemotePeer()
	_ = s.SetDeadline(time.Now().Add(b.cfg.ReadTimeout))
	secret, err := io.ReadAll(io.LimitReader(s, ticket.MaxSecretLen+1))
	if err == nil && len(secret) > ticket.MaxSecretLen {
		err = errors.New("secret too long")
	}
	if err != nil {
		_ = s.Reset()
		b.cfg.Limited.Warn("invite "+remote.String(), "invite stream reset", "peer", remote.String(), "err", oneline.Error(err))
		return
	}
	verdict := b.redeem(remote, secret)
	if verdict != verdictOK {
		b.cfg.Limited.Warn("invite "+remote.String(), "refused invite", "peer", remote.String(), "reason", verdict)
	}
	if _, err := io.WriteString(s, verdict+"\n"); err != nil {
		_ = s.Reset()
		return
	}
	_ = s.Close()
}

// Close makes Handle refuse new streams and waits for the running ones,
// which closing the host ends. It is idempotent.
func (b *Book) Close() {
	b.mu.Lock()
	b.closed = true
	b.mu.Unlock()
	b.handlers.Wait()
}

// Present presents secret to peer p on h and maps its verdict to an
// error: refusal.ErrDenied for an invite that is used by another peer,
// expired or unknown; peerdial.ErrNoListener for a peer that takes no
// invites; peerdial.ErrUnreachable for one that cannot be reached.
func Present(ctx context.Context, h host.Host, p peer.ID, secret []byte, allowLimited bool, dialTimeout, timeout time.Duration) error {
	if allowLimited {
		ctx = network.WithAllowLimitedConn(ctx, "p2ptun forward --allow-limited")
	}
	s, err := peerdial.OpenStream(ctx, h, p, Protocol, dialTimeout, timeout)
	switch {
	case errors.Is(err, peerdial.ErrNoListener):
		return fmt.Errorf("%w: peer %s takes no invites (is it a p2ptun daemon?)", peerdial.ErrNoListener, p)
	case errors.Is(err, peerdial.ErrUnreachable):
		return fmt.Errorf("presenting the invite: %w", err)
	case err != nil:
		// Connected, then dropped at once: most often the peer's
		// node-wide access policy, which refuses a connection only
		// after the handshake that let this side think it was in.
		return fmt.Errorf("%w: could not present the invite to %s (%s); if it has an [access] allow list, this node's peer ID %s must be on it", peerdial.ErrUnreachable, p, oneline.Error(err), h.ID())
	}
	_ = s.SetDeadline(time.Now().Add(timeout))
	var reply []byte
	_, err = s.Write(secret)
	if err == nil {
		err = s.CloseWrite()
	}
	if err == nil {
		reply, err = io.ReadAll(io.LimitReader(s, maxVerdictLen))
	}
	if err != nil {
		_ = s.Reset()
		return fmt.Errorf("presenting the invite to %s: %s", p, oneline.Error(err))
	}
	_ = s.Close()
	switch v := strings.TrimSuffix(string(reply), "\n"); v {
	case verdictOK:
		return nil
	case verdictUsed:
		return fmt.Errorf("%w: invite already used: it admitted another peer; ask for a new one", refusal.ErrDenied)
	case verdictExpired:
		return fmt.Errorf("%w: invite expired; ask for a new one", refusal.ErrDenied)
	case verdictUnknown:
		return fmt.Errorf("%w: unknown invite: %s has no such invite (its listener was closed, or its daemon restarted); ask for a new one", refusal.ErrDenied, p)
	default:
		return fmt.Errorf("presenting the invite to %s: unexpected reply %q", p, v)
	}
}

// Addrs orders a host's addresses for a ticket: public ones first, then
// relay addresses, then private networks, then loopback, and keeps as
// many as a ticket takes.
func Addrs(as []ma.Multiaddr) []ma.Multiaddr {
	rank := func(a ma.Multiaddr) int {
		switch {
		case isCircuit(a):
			return 1
		case manet.IsPublicAddr(a):
			return 0
		case manet.IsIPLoopback(a):
			return 3
		}
		return 2
	}
	out := slices.Clone(as)
	slices.SortStableFunc(out, func(a, b ma.Multiaddr) int {
		return cmp.Or(cmp.Compare(rank(a), rank(b)), strings.Compare(a.String(), b.String()))
	})
	out = slices.CompactFunc(out, ma.Multiaddr.Equal)
	if len(out) > ticket.MaxAddrs {
		out = out[:ticket.MaxAddrs]
	}
	return out
}

func isCircuit(a ma.Multiaddr) bool {
	_, err := a.ValueForProtocol(ma.P_CIRCUIT)
	return err == nil
}
