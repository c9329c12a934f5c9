package p2phost

import "slices"

// Identity is what `p2ptun id` prints; field names follow kubo's `ipfs id`.
type Identity struct {
	ID           string
	Addresses    []string
	AgentVersion string
}

// Identity returns the host's peer ID, its dialable addresses, each
// ending in /p2p/<ID>, sorted, and its user agent. Call it after Start.
func (h *Host) Identity() Identity {
	id := h.host.ID()
	suffix := "/p2p/" + id.String()
	addrs := make([]string, 0, len(h.host.Addrs()))
	for _, a := range h.host.Addrs() {
		addrs = append(addrs, a.String()+suffix)
	}
	slices.Sort(addrs)
	return Identity{ID: id.String(), Addresses: addrs, AgentVersion: h.cfg.UserAgent}
}
