package node

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/host/autorelay"
	"github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/client"
	pbv2 "github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/pb"
	relayv2 "github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/relay"
	"github.com/libp2p/go-libp2p/p2p/protocol/ping"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/p2ptun/p2ptun/config"
	"github.com/p2ptun/p2ptun/forward"
	"github.com/p2ptun/p2ptun/peerlog"
	"github.com/p2ptun/p2ptun/streams"
)

// relayOptions returns the libp2p options for the relay service (when
// this node is a relay), static relays and reachability.
func (n *Node) relayOptions() ([]libp2p.Option, error) {
	var opts []libp2p.Option
	if r := n.opts.Relay; r != nil {
		res := relayv2.DefaultResources()
		res.Limit = nil // no cap: the ACL admits only the peers it serves
		if r.Duration.Duration > 0 || r.DataMiB > 0 {
			res.Limit = &relayv2.RelayLimit{Duration: r.Duration.Duration, Data: mib(r.DataMiB)}
			if res.Limit.Duration == 0 {
				res.Limit.Duration = 100 * 365 * 24 * time.Hour
			}
			if res.Limit.Data == 0 {
				res.Limit.Data = 1 << 62
			}
		}
		res.MaxReservations = r.MaxReservations
		res.MaxCircuits = r.MaxCircuits
		res.ReservationTTL = r.ReservationTTL.Duration
		// Allowed peers may share an address (a NAT, or loopback).
		res.MaxReservationsPerIP = r.MaxReservations
		res.MaxReservationsPerASN = r.MaxReservations
		acl, err := newRelayACL(*r, n.limited)
		if err != nil {
			return nil, err
		}
		// The relay service runs only while the node believes it is
		// publicly reachable; a relay's operator says so by running it.
		opts = append(opts, libp2p.EnableRelayService(relayv2.WithResources(res), relayv2.WithACL(acl)), libp2p.ForceReachabilityPublic())
	}
	if len(n.opts.Relays) > 0 {
		// Reservations on configured relays are kept by keepReservation,
		// not autorelay: autorelay advertises circuit addresses only for
		// relays with public IPs, so a relay on a LAN (or loopback) would
		// never yield an address.
		opts = append(opts, libp2p.AddrsFactory(func(addrs []ma.Multiaddr) []ma.Multiaddr {
			return append(addrs, n.circuitAddrs()...)
		}))
	}
	if n.opts.AutoRelay {
		// When the node finds itself unreachable, reserve slots on relays
		// it has met (through the DHT, or any connection): go-libp2p's
		// autorelay, fed with connected peers that run the relay service.
		opts = append(opts, libp2p.EnableAutoRelayWithPeerSource(n.relayCandidates,
			autorelay.WithBootDelay(0), autorelay.WithMinInterval(10*time.Second)))
	}
	switch n.opts.Reachability {
	case "private":
		opts = append(opts, libp2p.ForceReachabilityPrivate())
	case "public":
		if n.opts.Relay == nil {
			opts = append(opts, libp2p.ForceReachabilityPublic())
		}
	}
	return opts, nil
}

// hopProtocol is the circuit relay v2 service protocol.
const hopProtocol = "/libp2p/circuit/relay/0.2.0/hop"

// relayCandidates offers autorelay the connected peers that serve as
// relays.
func (n *Node) relayCandidates(ctx context.Context, num int) <-chan peer.AddrInfo {
	out := make(chan peer.AddrInfo, num)
	defer close(out)
	// autorelay may ask before libp2p.New has returned the host to Start.
	h, _ := n.started.Load().(host.Host)
	if h == nil {
		return out
	}
	for _, p := range h.Network().Peers() {
		if len(out) == num {
			break
		}
		if ok, _ := h.Peerstore().SupportsProtocols(p, hopProtocol); len(ok) == 0 {
			continue
		}
		out <- peer.AddrInfo{ID: p, Addrs: h.Peerstore().Addrs(p)}
	}
	return out
}

// keepReservation holds a reservation on relay ri for as long as ctx
// lives: it connects, reserves, refreshes well before expiry, and retries
// with backoff (logging once per interval) while the relay is unreachable
// or refuses.
func (n *Node) keepReservation(ctx context.Context, ri peer.AddrInfo) {
	backoff := time.Second
	for {
		rctx, cancel := context.WithTimeout(ctx, n.opts.Timeouts.Dial.Std())
		err := n.host.Connect(rctx, ri)
		var rsvp *client.Reservation
		if err == nil {
			rsvp, err = client.Reserve(rctx, n.host, ri)
		}
		cancel()
		wait := backoff
		if err != nil {
			n.setReservation(ri.ID, nil)
			if ctx.Err() != nil {
				return
			}
			msg := "relay reservation failed; retrying"
			var re client.ReservationError
			if errors.As(err, &re) && (re.Status == pbv2.Status_PERMISSION_DENIED || re.Status == pbv2.Status_RESERVATION_REFUSED) {
				msg = "the relay refused a reservation: ask its operator to add " + n.host.ID().String() + " to its allow list (p2ptun relay --allow, or [relay] allow); retrying"
			}
			n.limited.Warn("reserve "+ri.ID.String(), msg,
				"relay", ri.ID.String(), "err", forward.OneLine(err), "retry_in", backoff.String())
			backoff = min(2*backoff, time.Minute)
		} else {
			backoff = time.Second
			if n.setReservation(ri.ID, rsvp) {
				n.log.Info("relay reservation held; reachable through the relay", "relay", ri.ID.String(),
					"expires", rsvp.Expiration.Format(time.RFC3339), "limit_duration", rsvp.LimitDuration.String(), "limit_data", rsvp.LimitData)
			}
			// Refresh well before expiry; also notices a relay that forgot us.
			wait = min(max(time.Until(rsvp.Expiration)*3/4, time.Second), time.Minute)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
	}
}

// setReservation records whether relay p holds a reservation for us and
// reports whether that is news.
func (n *Node) setReservation(p peer.ID, r *client.Reservation) bool {
	n.relayMu.Lock()
	defer n.relayMu.Unlock()
	_, had := n.reserved[p]
	if r == nil {
		delete(n.reserved, p)
		return had
	}
	n.reserved[p] = true
	return !had
}

// circuitAddrs are this node's addresses through the relays that hold a
// reservation for it: each configured relay address plus /p2p-circuit.
func (n *Node) circuitAddrs() []ma.Multiaddr {
	n.relayMu.Lock()
	defer n.relayMu.Unlock()
	var out []ma.Multiaddr
	for _, ri := range n.opts.Relays {
		if !n.reserved[ri.ID] {
			continue
		}
		suffix := ma.StringCast("/p2p/" + ri.ID.String() + "/p2p-circuit")
		for _, a := range ri.Addrs {
			out = append(out, a.Encapsulate(suffix))
		}
	}
	return out
}

// relayACL admits reservations and relayed connections of allowed peers
// only: both ends of a relayed connection must be allowed.
type relayACL struct {
	all   bool
	allow []peer.ID
	log   *peerlog.Logger
}

var _ relayv2.ACLFilter = (*relayACL)(nil)

func newRelayACL(r config.Relay, log *peerlog.Logger) (*relayACL, error) {
	acl := &relayACL{all: r.AllowAll, log: log}
	for _, s := range r.Allow {
		id, err := ParsePeer(s)
		if err != nil {
			return nil, err
		}
		acl.allow = append(acl.allow, id)
	}
	return acl, nil
}

func (a *relayACL) ok(p peer.ID) bool { return a.all || slices.Contains(a.allow, p) }

func (a *relayACL) AllowReserve(p peer.ID, _ ma.Multiaddr) bool {
	if a.ok(p) {
		return true
	}
	a.log.Warn("relay reserve "+p.String(), "relay refused a reservation: peer not on relay.allow", "peer", p.String())
	return false
}

func (a *relayACL) AllowConnect(src peer.ID, _ ma.Multiaddr, dest peer.ID) bool {
	if a.ok(src) && a.ok(dest) {
		return true
	}
	a.log.Warn("relay connect "+src.String(), "relay refused a connection: both ends must be on relay.allow", "peer", src.String(), "dest", dest.String())
	return false
}

// PingResult is one round trip of `p2ptun ping`.
type PingResult struct {
	RTT  time.Duration
	Path string
}

// Ping connects to a peer (PEER-ADDR forms as for Forward) and measures
// count round trips with libp2p's ping protocol, saying which path each
// took. It uses relayed connections, limited or not.
func (n *Node) Ping(ctx context.Context, peerAddr string, count int) ([]PingResult, error) {
	if count < 1 || count > 1000 {
		return nil, fmt.Errorf("%w: ping count %d: use 1 to 1000", ErrUsage, count)
	}
	pi, err := ParsePeerAddr(peerAddr)
	if err != nil {
		return nil, err
	}
	if pi.ID == n.host.ID() {
		return nil, fmt.Errorf("%w: %s is this node's own peer ID", ErrUsage, pi.ID)
	}
	if !n.opts.Access.Allowed(pi.ID) {
		return nil, fmt.Errorf("%w: peer %s is refused by this node's access policy", ErrDenied, pi.ID)
	}
	n.addAddrs(pi)
	ctx = network.WithAllowLimitedConn(ctx, "p2ptun ping")
	if err := n.connect(ctx, pi.ID); err != nil {
		return nil, err
	}
	pctx, cancel := context.WithTimeout(ctx, time.Duration(count)*n.opts.Timeouts.StreamOpen.Std())
	defer cancel()
	var out []PingResult
	for res := range ping.Ping(pctx, n.host, pi.ID) {
		if res.Error != nil {
			return out, fmt.Errorf("%w: ping %s: %s", ErrUnreachable, pi.ID, res.Error)
		}
		out = append(out, PingResult{RTT: res.RTT, Path: n.path(pi.ID)})
		if len(out) == count {
			break
		}
	}
	if len(out) < count {
		return out, fmt.Errorf("%w: ping %s: %w", ErrUnreachable, pi.ID, pctx.Err())
	}
	return out, nil
}

// path names the best current path to p.
func (n *Node) path(p peer.ID) string {
	conns := n.host.Network().ConnsToPeer(p)
	for _, c := range conns {
		if streams.Path(c) == "direct" {
			return "direct"
		}
	}
	if len(conns) > 0 {
		return streams.Path(conns[0])
	}
	return "not connected"
}

// RTT returns the smoothed round-trip time to p that libp2p's ping has
// measured, or 0 if none has.
func (n *Node) RTT(p string) time.Duration {
	id, err := peer.Decode(p)
	if err != nil {
		return 0
	}
	return n.host.Peerstore().LatencyEWMA(id)
}

// probePeers pings, every interval, each peer that has live streams. The
// samples feed `stream ls`'s RTT; and a peer that answers no ping within
// timeout is cut off (the keepalive), so that its streams end with a reset
// rather than hang on a connection that is dead but not closed (a
// partition, a peer that lost power, QUIC's 30s idle timeout).
func (n *Node) probePeers(ctx context.Context, interval, timeout time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		seen := map[string]bool{}
		var wg sync.WaitGroup
		for _, s := range n.streams.List() {
			if seen[s.Peer] {
				continue
			}
			seen[s.Peer] = true
			id, err := peer.Decode(s.Peer)
			if err != nil {
				continue
			}
			wg.Go(func() { n.probe(ctx, id, timeout) })
		}
		wg.Wait()
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// probe pings p once and records the RTT in the peerstore. If the ping
// stream opens but no answer comes within timeout, p's connections are
// closed: those open when the probe began, not one that opened while it
// waited (the path came back and a forward dialed again). A stream that
// cannot even be opened in time is not taken as silence: a QUIC
// connection holding its 256 streams makes the next one wait, and cutting
// it would reset every tunnel on it (QUIC's own idle timeout still ends a
// dead one). It pings only an existing connection: right after a cut, p's
// streams are still listed, and a dial then would reconnect to p or,
// across a partition, leave the swarm's dial backoff on p's addresses once
// the path is back.
func (n *Node) probe(ctx context.Context, p peer.ID, timeout time.Duration) {
	conns := n.host.Network().ConnsToPeer(p)
	if len(conns) == 0 {
		return
	}
	deadline := time.Now().Add(timeout)
	pctx := network.WithNoDial(network.WithAllowLimitedConn(ctx, "keepalive"), "keepalive")
	pctx, cancel := context.WithDeadline(pctx, deadline)
	defer cancel()
	s, err := n.host.NewStream(pctx, p, ping.ID)
	if err != nil {
		if n.unopenedProbe != nil {
			n.unopenedProbe(p)
		}
		return
	}
	defer s.Reset()
	_ = s.SetDeadline(deadline)
	out := make([]byte, ping.PingSize)
	rand.Read(out)
	start := time.Now()
	in := make([]byte, ping.PingSize)
	if _, err = s.Write(out); err == nil {
		_, err = io.ReadFull(s, in)
	}
	if err == nil && bytes.Equal(in, out) {
		n.host.Peerstore().RecordLatency(p, time.Since(start))
		return
	}
	// Only silence is the keepalive's business: a quick refusal (no ping
	// protocol, a connection already gone) is not a dead peer.
	if ctx.Err() != nil || time.Now().Before(deadline) {
		return
	}
	n.log.Warn("peer answered no ping within the keepalive; closing its connections (their streams are reset)",
		"peer", p.String(), "keepalive", n.opts.Timeouts.Keepalive.Std().String())
	for _, c := range conns {
		_ = c.Close()
	}
}
