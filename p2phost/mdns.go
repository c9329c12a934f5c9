package p2phost

import (
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/discovery/mdns"
)

// mdnsService is the service name p2ptun nodes announce on the LAN.
const mdnsService = "p2ptun"

// mdnsTTL is how long addresses learned on the LAN stay usable without
// being announced again.
const mdnsTTL = 10 * time.Minute

// mdnsNotifee records LAN peers' addresses; it does not connect to them:
// knowing where a peer is is enough for /p2p/ID to work.
type mdnsNotifee struct{ h *Host }

func (m mdnsNotifee) HandlePeerFound(pi peer.AddrInfo) {
	if pi.ID == m.h.host.ID() || len(pi.Addrs) == 0 {
		return
	}
	m.h.host.Peerstore().AddAddrs(pi.ID, pi.Addrs, mdnsTTL)
	m.h.log.Debug("found a peer on the LAN (mDNS)", "peer", pi.ID.String())
}

// startMDNS announces this node and listens for others on the LAN.
func (h *Host) startMDNS() error {
	s := mdns.NewMdnsService(h.host, mdnsService, mdnsNotifee{h})
	if err := s.Start(); err != nil {
		return err
	}
	h.mdns = s
	return nil
}
