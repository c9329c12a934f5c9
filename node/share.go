package node

import (
	"cmp"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"

	"github.com/p2ptun/p2ptun/config"
	"github.com/p2ptun/p2ptun/forward"
	"github.com/p2ptun/p2ptun/listen"
	"github.com/p2ptun/p2ptun/registry"
	"github.com/p2ptun/p2ptun/spec"
	"github.com/p2ptun/p2ptun/ticket"
)

// InviteProtocol is the internal protocol on which a forwarding node
// presents an invite's secret to the listening node. It lives under
// /p2ptun/, which no tunnel may use.
const InviteProtocol = protocol.ID("/p2ptun/invite/1.0.0")

// DefaultInviteTTL is how long an invite stays redeemable when
// ShareRequest.TTL is zero.
const DefaultInviteTTL = time.Hour

const (
	// inviteSecretLen is the size of the secrets this node makes.
	inviteSecretLen = 32
	// maxInvites bounds the invites a node keeps; past it, expired ones
	// are dropped, and if none has expired, Share fails.
	maxInvites = 4096
	// maxVerdictLen bounds the reply a node reads to an invite.
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

// invite is one outstanding or redeemed invite; the node keeps its
// secret's hash only.
type invite struct {
	listenerID uint64
	listener   *listen.Listener
	proto      string
	expires    time.Time
	usedBy     peer.ID // "" until redeemed
}

// ShareRequest asks for a ticket to one of the node's listeners.
type ShareRequest struct {
	Protocol string
	// Invite makes the ticket a single-use invite: the first peer that
	// presents it joins the listener's allowlist.
	Invite bool `json:",omitempty"`
	// TTL is how long the invite can be redeemed; zero means
	// DefaultInviteTTL. Only for invites.
	TTL config.Duration `json:",omitzero"`
}

// Share is a ticket and what it says, as `p2ptun share --json` prints it.
type Share struct {
	Ticket   string
	Peer     string
	Protocol string
	// Addresses are the dialable addresses in the ticket, each ending in
	// /p2p/Peer, public ones first.
	Addresses []string
	// Expires is when the invite expires; absent for a plain ticket.
	Expires time.Time `json:",omitzero"`
}

// Share returns a ticket naming this node, its current addresses (relay
// addresses included) and the protocol of an existing listener, which it
// fails with ErrNotFound without. With r.Invite, the ticket also carries a
// new invite's secret; the node keeps only its hash, in memory.
func (n *Node) Share(_ context.Context, r ShareRequest) (Share, error) {
	if n.isClosed() {
		return Share{}, ErrClosed
	}
	ttl := r.TTL.Std()
	switch {
	case ttl != 0 && !r.Invite:
		return Share{}, fmt.Errorf("%w: a TTL applies to invites only; add --invite, or drop --ttl", ErrUsage)
	case ttl < 0:
		return Share{}, fmt.Errorf("%w: TTL %s is negative", ErrUsage, ttl)
	case ttl == 0:
		ttl = DefaultInviteTTL
	}
	proto, err := spec.ParseProtocol(r.Protocol, true)
	if err != nil {
		return Share{}, err
	}
	var rec *registry.Listener
	for _, l := range n.listeners.List() {
		if l.Kind == registry.KindListen && l.Protocol == string(proto) {
			rec = &l
			break
		}
	}
	if rec == nil {
		return Share{}, fmt.Errorf("%w: nothing listens on %s here: open it first with `p2ptun listen %s TARGET --invite-only` (or --allow PEER), see `p2ptun ls`", ErrNotFound, proto, proto)
	}
	if r.Invite && rec.AllowAll {
		return Share{}, fmt.Errorf("%w: the listener on %s allows every peer already: share it without --invite", ErrUsage, proto)
	}

	id := n.host.ID()
	t := ticket.Ticket{Peer: id, Protocol: string(proto), Addrs: shareAddrs(n.host.Addrs())}
	if !r.Invite {
		return n.shared(t)
	}
	t.Secret = make([]byte, inviteSecretLen)
	rand.Read(t.Secret) // crypto/rand.Read never returns an error
	expires := n.opts.Now().Add(ttl)
	t.Expires = expires
	out, err := n.shared(t)
	if err != nil {
		return Share{}, err
	}
	if err := n.addInvite(sha256.Sum256(t.Secret), &invite{listenerID: rec.ID, proto: rec.Protocol, expires: expires}); err != nil {
		return Share{}, err
	}
	// The ticket says the second; the node enforces the exact time.
	out.Expires = expires.UTC()
	n.log.Info("invite created", "proto", rec.Protocol, "expires", expires.UTC().Format(time.RFC3339))
	if allow, _ := n.opts.Access.Lists(); len(allow) > 0 {
		n.log.Warn("the node-wide access allow list is set: an invited peer cannot connect unless it is on it too (p2ptun access allow PEER)", "proto", rec.Protocol)
	}
	return out, nil
}

// shared encodes t into a Share.
func (n *Node) shared(t ticket.Ticket) (Share, error) {
	s, err := t.Encode()
	if err != nil {
		return Share{}, fmt.Errorf("making the ticket: %w", err)
	}
	suffix := "/p2p/" + t.Peer.String()
	addrs := make([]string, len(t.Addrs))
	for i, a := range t.Addrs {
		addrs[i] = a.String() + suffix
	}
	return Share{Ticket: s, Peer: t.Peer.String(), Protocol: t.Protocol, Addresses: addrs}, nil
}

// shareAddrs orders a host's addresses for a ticket: public ones first,
// then relay addresses, then private networks, then loopback, and keeps
// as many as a ticket takes.
func shareAddrs(as []ma.Multiaddr) []ma.Multiaddr {
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

// addInvite stores an invite for the listener it names, unless that
// listener is gone.
func (n *Node) addInvite(hash [sha256.Size]byte, inv *invite) error {
	n.invMu.Lock()
	defer n.invMu.Unlock()
	inv.listener = n.served[inv.listenerID]
	if inv.listener == nil {
		return fmt.Errorf("%w: the listener on %s closed while the invite was made", ErrNotFound, inv.proto)
	}
	if len(n.invites) >= maxInvites {
		now := n.opts.Now()
		for h, x := range n.invites {
			if !now.Before(x.expires) {
				delete(n.invites, h)
			}
		}
	}
	if len(n.invites) >= maxInvites {
		return fmt.Errorf("%d invites are open already: let some expire (or close their listeners) first", maxInvites)
	}
	n.invites[hash] = inv
	return nil
}

// serve records a running listener so that invites can name it, and
// returns the Close to register, which forgets it and its invites.
func (n *Node) serve(id uint64, l *listen.Listener) func() error {
	n.invMu.Lock()
	n.served[id] = l
	n.invMu.Unlock()
	return func() error {
		n.invMu.Lock()
		delete(n.served, id)
		for h, inv := range n.invites {
			if inv.listenerID == id {
				delete(n.invites, h)
			}
		}
		n.invMu.Unlock()
		return l.Close()
	}
}

// redeem decides on an invite presented by remote: the first peer to
// present an unexpired invite joins its listener's allowlist (and the
// registry's record of it). The same peer may present it again, and is
// told it is in, without any change; any other peer is refused.
//
// Invites are found by the SHA-256 of their secret: the lookup compares
// hashes, so its timing can tell a guesser nothing about a secret.
func (n *Node) redeem(remote peer.ID, secret []byte) string {
	h := sha256.Sum256(secret)
	n.invMu.Lock()
	defer n.invMu.Unlock()
	inv := n.invites[h]
	switch {
	case inv == nil:
		return verdictUnknown
	case inv.usedBy == remote:
		return verdictOK
	case inv.usedBy != "":
		return verdictUsed
	case !n.opts.Now().Before(inv.expires):
		return verdictExpired
	}
	if err := n.listeners.AllowPeer(inv.listenerID, remote.String()); err != nil {
		delete(n.invites, h)
		return verdictUnknown
	}
	inv.listener.Allow(remote)
	inv.usedBy = remote
	n.log.Info("invite redeemed; peer added to the listener's allowlist", "proto", inv.proto, "peer", remote.String())
	return verdictOK
}

// handleInvite serves InviteProtocol: it reads a secret (bounded in size
// and time), answers with a verdict line, and closes the stream.
func (n *Node) handleInvite(s network.Stream) {
	if !n.enterHandler() {
		_ = s.Reset()
		return
	}
	defer n.handlers.Done()
	remote := s.Conn().RemotePeer()
	_ = s.SetDeadline(time.Now().Add(n.opts.Timeouts.StreamOpen.Std()))
	secret, err := io.ReadAll(io.LimitReader(s, ticket.MaxSecretLen+1))
	if err == nil && len(secret) > ticket.MaxSecretLen {
		err = errors.New("secret too long")
	}
	if err != nil {
		_ = s.Reset()
		n.limited.Warn("invite "+remote.String(), "invite stream reset", "peer", remote.String(), "err", forward.OneLine(err))
		return
	}
	verdict := n.redeem(remote, secret)
	if verdict != verdictOK {
		n.limited.Warn("invite "+remote.String(), "refused invite", "peer", remote.String(), "reason", verdict)
	}
	if _, err := io.WriteString(s, verdict+"\n"); err != nil {
		_ = s.Reset()
		return
	}
	_ = s.Close()
}

// enterHandler counts a running internal protocol handler unless the node
// is closing.
func (n *Node) enterHandler() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return false
	}
	n.handlers.Add(1)
	return true
}

// presentInvite presents secret to peer p and maps its verdict to an
// error: ErrDenied for an invite that is used by another peer, expired or
// unknown.
func (n *Node) presentInvite(ctx context.Context, p peer.ID, secret []byte, allowLimited bool) error {
	if allowLimited {
		ctx = network.WithAllowLimitedConn(ctx, "p2ptun forward --allow-limited")
	}
	timeout := n.opts.Timeouts.StreamOpen.Std()
	s, err := forward.OpenStream(ctx, n.host, p, InviteProtocol, n.opts.Timeouts.Dial.Std(), timeout)
	switch {
	case errors.Is(err, ErrNoListener):
		return fmt.Errorf("%w: peer %s takes no invites (is it a p2ptun daemon?)", ErrNoListener, p)
	case errors.Is(err, ErrUnreachable):
		return fmt.Errorf("presenting the invite: %w", err)
	case err != nil:
		// Connected, then dropped at once: most often the peer's
		// node-wide access policy, which refuses a connection only
		// after the handshake that let this side think it was in.
		return fmt.Errorf("%w: could not present the invite to %s (%s); if it has an [access] allow list, this node's peer ID %s must be on it", ErrUnreachable, p, forward.OneLine(err), n.host.ID())
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
		return fmt.Errorf("presenting the invite to %s: %s", p, forward.OneLine(err))
	}
	_ = s.Close()
	switch v := strings.TrimSuffix(string(reply), "\n"); v {
	case verdictOK:
		return nil
	case verdictUsed:
		return fmt.Errorf("%w: invite already used: it admitted another peer; ask for a new one", ErrDenied)
	case verdictExpired:
		return fmt.Errorf("%w: invite expired; ask for a new one", ErrDenied)
	case verdictUnknown:
		return fmt.Errorf("%w: unknown invite: %s has no such invite (its listener was closed, or its daemon restarted); ask for a new one", ErrDenied, p)
	default:
		return fmt.Errorf("presenting the invite to %s: unexpected reply %q", p, v)
	}
}
