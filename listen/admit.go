package listen

import (
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"

	"github.com/p2ptun/p2ptun/peerlog"
	"github.com/p2ptun/p2ptun/refusal"
)

// Rules are a listener's access rules: who may open streams and how fast.
type Rules struct {
	// Protocol names the listener in the refusals' log lines.
	Protocol protocol.ID
	// Allow, AllowAll, PeerRate, PeerBurst, NamedPeerRate and
	// NamedPeerBurst are as in Config; zero NamedPeerRate means PeerRate
	// and PeerBurst.
	Allow                     []peer.ID
	AllowAll                  bool
	PeerRate, NamedPeerRate   float64
	PeerBurst, NamedPeerBurst int
	// Limited logs each refusal, throttled per peer; required.
	Limited *peerlog.Logger
	// Now tells the time for the rates' token buckets; default time.Now.
	Now func() time.Time
}

// Admission checks the peer that opens a stream against a listener's
// Rules: its allowlist (which Allow extends at runtime), then its per-peer
// stream rate (one bucket for the peers Rules.Allow names, one for the
// rest). A Listener admits each stream with one before it dials its
// target; a caller that serves streams itself (package p2pnet) uses one
// alone, so that both refuse alike. It is safe for concurrent use.
type Admission struct {
	rules      Rules
	named      map[peer.ID]bool // Rules.Allow
	rates      *peerRates       // peers Rules.Allow does not name
	namedRates *peerRates       // peers it names

	mu    sync.RWMutex
	allow map[peer.ID]bool // Rules.Allow, and the peers Allow adds
}

// NewAdmission returns the admission of r.
func NewAdmission(r Rules) *Admission {
	if r.NamedPeerRate == 0 {
		r.NamedPeerRate, r.NamedPeerBurst = r.PeerRate, r.PeerBurst
	}
	if r.Now == nil {
		r.Now = time.Now
	}
	a := &Admission{
		rules: r, named: make(map[peer.ID]bool, len(r.Allow)), allow: make(map[peer.ID]bool, len(r.Allow)),
		rates: newPeerRates(r.PeerRate, r.PeerBurst, r.Now), namedRates: newPeerRates(r.NamedPeerRate, r.NamedPeerBurst, r.Now),
	}
	for _, p := range r.Allow {
		a.named[p], a.allow[p] = true, true
	}
	return a
}

// Allow adds p to the allowlist, for the streams it opens from now on. It
// reports whether p was not on it yet.
func (a *Admission) Allow(p peer.ID) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.allow[p] {
		return false
	}
	a.allow[p] = true
	return true
}

func (a *Admission) allowed(p peer.ID) bool {
	if a.rules.AllowAll {
		return true
	}
	a.mu.RLock()
	defer a.mu.RUnlock()
	return a.allow[p]
}

// Admit checks the peer that opened s, whose ID is who (encoded once by
// the caller). It returns "" when the stream may go on; otherwise it has
// logged the refusal (throttled), reset s with the cause's code, so that a
// p2ptun peer reads why, and returns the cause.
func (a *Admission) Admit(s network.Stream, who string) refusal.Cause {
	remote, proto := s.Conn().RemotePeer(), string(a.rules.Protocol)
	if !a.allowed(remote) {
		a.rules.Limited.Warn("refused "+proto+" "+who,
			"refused stream: peer is not on this listener's allowlist",
			"peer", who, "proto", proto)
		_ = refusal.Reset(s, refusal.Denied)
		return refusal.Denied
	}
	rates, key := a.rates, "limits.peer_stream_rate"
	if a.named[remote] {
		rates, key = a.namedRates, "limits.named_peer_stream_rate"
	}
	if !rates.allow(remote) {
		a.rules.Limited.Warn("rate "+proto+" "+who,
			"refused stream: peer opens streams faster than "+key,
			"peer", who, "proto", proto)
		_ = refusal.Reset(s, refusal.RateLimited)
		return refusal.RateLimited
	}
	return ""
}
