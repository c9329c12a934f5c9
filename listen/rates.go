package listen

import (
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"golang.org/x/time/rate"
)

// maxTrackedPeers bounds the token buckets a listener keeps; past it,
// buckets that are full again (idle peers) are dropped.
const maxTrackedPeers = 4096

// peerRates holds one token bucket per peer: new streams per second, with
// a burst.
type peerRates struct {
	limit rate.Limit
	burst int
	now   func() time.Time

	mu    sync.Mutex
	peers map[peer.ID]*rate.Limiter
}

func newPeerRates(perSecond float64, burst int, now func() time.Time) *peerRates {
	if perSecond <= 0 {
		return nil // unlimited
	}
	return &peerRates{limit: rate.Limit(perSecond), burst: max(burst, 1), now: now, peers: make(map[peer.ID]*rate.Limiter)}
}

// allow takes a token from p's bucket, reporting false when it is empty.
func (r *peerRates) allow(p peer.ID) bool {
	if r == nil {
		return true
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.now()
	l, ok := r.peers[p]
	if !ok {
		if len(r.peers) >= maxTrackedPeers {
			for id, b := range r.peers {
				if b.TokensAt(now) >= float64(r.burst) {
					delete(r.peers, id)
				}
			}
		}
		l = rate.NewLimiter(r.limit, r.burst)
		r.peers[p] = l
	}
	return l.AllowN(now, 1)
}
