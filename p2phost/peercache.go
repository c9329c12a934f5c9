package p2phost

import (
	"context"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/p2ptun/p2ptun/config/homedir"
)

const (
	// cacheTTL is how long cached addresses stay in the peerstore after a
	// restart without being confirmed by a new connection.
	cacheTTL = 7 * 24 * time.Hour
	// maxCachedPeers bounds the cache.
	maxCachedPeers = 1024
)

// loadPeerCache reads the cache once, into h.cache, and seeds the
// peerstore with it. A broken cache is logged and ignored: it is only a
// shortcut.
func (h *Host) loadPeerCache() {
	m, err := homedir.LoadPeerCache(h.cfg.PeerCache)
	if err != nil {
		h.log.Warn("ignoring the peer address cache", "err", err)
		m = map[string][]string{}
	}
	h.cache = m
	for id, addrs := range m {
		p, err := peer.Decode(id)
		if err != nil || p == h.host.ID() {
			continue
		}
		var mas []ma.Multiaddr
		for _, a := range addrs {
			if m, err := ma.NewMultiaddr(a); err == nil {
				mas = append(mas, m)
			}
		}
		h.host.Peerstore().AddAddrs(p, mas, cacheTTL)
	}
}

// savePeerCache merges the addresses of the peers this node is connected
// to into h.cache and writes it. It runs on keepPeerCache's goroutine, and
// once more in Close after that goroutine has ended, never concurrently.
func (h *Host) savePeerCache() {
	m := h.cache
	for _, p := range h.host.Network().Peers() {
		var addrs []string
		for _, c := range h.host.Network().ConnsToPeer(p) {
			addrs = append(addrs, c.RemoteMultiaddr().String())
		}
		for _, a := range h.host.Peerstore().Addrs(p) {
			addrs = append(addrs, a.String())
		}
		if len(addrs) > 0 {
			m[p.String()] = dedupe(addrs)
		}
	}
	for id := range m {
		if len(m) <= maxCachedPeers {
			break
		}
		delete(m, id)
	}
	if err := homedir.SavePeerCache(h.cfg.PeerCache, m); err != nil {
		h.log.Warn("could not save the peer address cache", "err", err)
	}
}

func dedupe(ss []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, s := range ss {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}

// keepPeerCache saves the cache every interval until ctx ends.
func (h *Host) keepPeerCache(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			h.savePeerCache()
		}
	}
}
