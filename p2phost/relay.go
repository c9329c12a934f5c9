package p2phost

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/host/autorelay"
	"github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/client"
	pbv2 "github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/pb"
	relayv2 "github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/relay"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/p2ptun/p2ptun/config"
	"github.com/p2ptun/p2ptun/oneline"
	"github.com/p2ptun/p2ptun/p2phost/limits"
	"github.com/p2ptun/p2ptun/peerlog"
)

// relayOptions returns the libp2p options for the relay service (when
// this node is a relay), static relays and reachability.
func (h *Host) relayOptions() ([]libp2p.Option, error) {
	var opts []libp2p.Option
	if r := h.cfg.Relay; r != nil {
		res := relayv2.DefaultResources()
		res.Limit = nil // no cap: the ACL admits only the peers it serves
		if r.Duration.Duration > 0 || r.DataMiB > 0 {
			res.Limit = &relayv2.RelayLimit{Duration: r.Duration.Duration, Data: limits.MiB(r.DataMiB)}
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
		acl, err := newRelayACL(*r, h.limited)
		if err != nil {
			return nil, err
		}
		// The relay service runs only while the node believes it is
		// publicly reachable; a relay's operator says so by running it.
		opts = append(opts, libp2p.EnableRelayService(relayv2.WithResources(res), relayv2.WithACL(acl)), libp2p.ForceReachabilityPublic())
	}
	if len(h.cfg.Relays) > 0 {
		// Reservations on configured relays are kept by keepReservation,
		// not autorelay: autorelay advertises circuit addresses only for
		// relays with public IPs, so a relay on a LAN (or loopback) would
		// never yield an address.
		opts = append(opts, libp2p.AddrsFactory(func(addrs []ma.Multiaddr) []ma.Multiaddr {
			return append(addrs, h.circuitAddrs()...)
		}))
	}
	if h.cfg.AutoRelay {
		// When the node finds itself unreachable, reserve slots on relays
		// it has met (through the DHT, or any connection): go-libp2p's
		// autorelay, fed with connected peers that run the relay service.
		opts = append(opts, libp2p.EnableAutoRelayWithPeerSource(h.relayCandidates,
			autorelay.WithBootDelay(0), autorelay.WithMinInterval(10*time.Second)))
	}
	switch h.cfg.Reachability {
	case "private":
		opts = append(opts, libp2p.ForceReachabilityPrivate())
	case "public":
		if h.cfg.Relay == nil {
			opts = append(opts, libp2p.ForceReachabilityPublic())
		}
	}
	return opts, nil
}

// hopProtocol is the circuit relay v2 service protocol.
const hopProtocol = "/libp2p/circuit/relay/0.2.0/hop"

// relayCandidates offers autorelay the connected peers that serve as
// relays.
func (h *Host) relayCandidates(ctx context.Context, num int) <-chan peer.AddrInfo {
	out := make(chan peer.AddrInfo, num)
	defer close(out)
	// autorelay may ask before libp2p.New has returned the host to Start.
	lh, _ := h.started.Load().(host.Host)
	if lh == nil {
		return out
	}
	for _, p := range lh.Network().Peers() {
		if len(out) == num {
			break
		}
		if ok, _ := lh.Peerstore().SupportsProtocols(p, hopProtocol); len(ok) == 0 {
			continue
		}
		out <- peer.AddrInfo{ID: p, Addrs: lh.Peerstore().Addrs(p)}
	}
	return out
}

// keepReservation holds a reservation on relay ri for as long as ctx
// lives: it connects, reserves, refreshes well before expiry, and retries
// with backoff (logging once per interval) while the relay is unreachable
// or refuses.
func (h *Host) keepReservation(ctx context.Context, ri peer.AddrInfo) {
	backoff := time.Second
	for {
		rctx, cancel := context.WithTimeout(ctx, h.cfg.Timeouts.Dial.Std())
		err := h.host.Connect(rctx, ri)
		var rsvp *client.Reservation
		if err == nil {
			rsvp, err = client.Reserve(rctx, h.host, ri)
		}
		cancel()
		wait := backoff
		if err != nil {
			lost := h.setReservation(ri.ID, nil)
			if ctx.Err() != nil {
				return
			}
			if lost && h.cfg.Reservation != nil {
				h.cfg.Reservation(ri.ID, err)
			}
			msg := "relay reservation failed; retrying"
			var re client.ReservationError
			if errors.As(err, &re) && (re.Status == pbv2.Status_PERMISSION_DENIED || re.Status == pbv2.Status_RESERVATION_REFUSED) {
				msg = "the relay refused a reservation: ask its operator to add " + h.host.ID().String() + " to its allow list (p2ptun relay --allow, or [relay] allow); retrying"
			}
			h.limited.Warn("reserve "+ri.ID.String(), msg,
				"relay", ri.ID.String(), "err", oneline.Error(err), "retry_in", backoff.String())
			backoff = min(2*backoff, time.Minute)
		} else {
			backoff = time.Second
			if h.setReservation(ri.ID, rsvp) {
				h.log.Info("relay reservation held; reachable through the relay", "relay", ri.ID.String(),
					"expires", rsvp.Expiration.Format(time.RFC3339), "limit_duration", rsvp.LimitDuration.String(), "limit_data", rsvp.LimitData)
				if h.cfg.Reservation != nil {
					h.cfg.Reservation(ri.ID, nil)
				}
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
func (h *Host) setReservation(p peer.ID, r *client.Reservation) bool {
	h.relayMu.Lock()
	defer h.relayMu.Unlock()
	_, had := h.reserved[p]
	if r == nil {
		delete(h.reserved, p)
		return had
	}
	h.reserved[p] = true
	return !had
}

// circuitAddrs are this node's addresses through the relays that hold a
// reservation for it: each configured relay address plus /p2p-circuit.
func (h *Host) circuitAddrs() []ma.Multiaddr {
	h.relayMu.Lock()
	defer h.relayMu.Unlock()
	var out []ma.Multiaddr
	for _, ri := range h.cfg.Relays {
		if !h.reserved[ri.ID] {
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
		id, err := peer.Decode(s)
		if err != nil {
			return nil, fmt.Errorf("%w: relay.allow: %q is not a peer ID (%s)", ErrUsage, s, oneline.Error(err))
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
