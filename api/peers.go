package api

import (
	"context"
	"maps"
	"net/http"
	"slices"

	"github.com/p2ptun/p2ptun/spec"
)

// PeerName is one name of `p2ptun peer ls --json`: config.toml's [peers]
// NAME = Addr, and the peer ID that Addr names.
type PeerName struct {
	Name string
	Addr string
	Peer string
}

// PeerNameList is the body of `p2ptun peer ls --json`.
type PeerNameList struct {
	Peers []PeerName
}

// PeerNameRequest sets Name to Addr (`p2ptun peer add`), or removes Name
// when Addr is "" (`p2ptun peer rm`).
type PeerNameRequest struct {
	Name string
	Addr string `json:",omitempty"`
}

// PeerNamesFrom lists a by name; never nil.
func PeerNamesFrom(a spec.Aliases) PeerNameList {
	out := PeerNameList{Peers: []PeerName{}}
	for _, name := range slices.Sorted(maps.Keys(a)) {
		id, _ := a.Peer(name)
		out.Peers = append(out.Peers, PeerName{Name: name, Addr: a[name], Peer: id.String()})
	}
	return out
}

// PeerNames returns the names the daemon resolves.
func (c *Client) PeerNames(ctx context.Context) (PeerNameList, error) {
	return call[PeerNameList](ctx, c, http.MethodGet, "/v0/peers", nil)
}

// SetPeerName saves r in the daemon's config file, which resolves it at
// once, and returns the names it now has.
func (c *Client) SetPeerName(ctx context.Context, r PeerNameRequest) (PeerNameList, error) {
	return call[PeerNameList](ctx, c, http.MethodPost, "/v0/peers", r)
}

// Named is l with the names of its peers (PeerName) from a.
func (l Listener) Named(a spec.Aliases) Listener {
	l.PeerName = a.NameOfString(l.Peer)
	l.AllowedPeerNames = nil
	for _, id := range l.AllowedPeers {
		if name := a.NameOfString(id); name != "" {
			if l.AllowedPeerNames == nil {
				l.AllowedPeerNames = map[string]string{}
			}
			l.AllowedPeerNames[id] = name
		}
	}
	l.Peers = slices.Clone(l.Peers)
	for i := range l.Peers {
		l.Peers[i].PeerName = a.NameOfString(l.Peers[i].Peer)
	}
	return l
}

// Named is o with the names of its tunnels' peers and of its peers from
// a.
func (o Overview) Named(a spec.Aliases) Overview {
	o.Tunnels = slices.Clone(o.Tunnels)
	for i := range o.Tunnels {
		t := &o.Tunnels[i]
		t.Peers = slices.Clone(t.Peers)
		for j := range t.Peers {
			t.Peers[j].PeerName = a.NameOfString(t.Peers[j].Peer)
		}
	}
	o.Peers = slices.Clone(o.Peers)
	for i := range o.Peers {
		o.Peers[i].PeerName = a.NameOfString(o.Peers[i].Peer)
	}
	return o
}

// Named is s with its peer's name from a.
func (s Stream) Named(a spec.Aliases) Stream {
	s.PeerName = a.NameOfString(s.Peer)
	return s
}

// Named is e with its peer's name from a.
func (e Event) Named(a spec.Aliases) Event {
	e.PeerName = a.NameOfString(e.Peer)
	return e
}
