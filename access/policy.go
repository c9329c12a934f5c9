package access

import (
	"slices"
	"sync"

	"github.com/libp2p/go-libp2p/core/connmgr"
	"github.com/libp2p/go-libp2p/core/control"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
)

var _ connmgr.ConnectionGater = (*Policy)(nil)

// Policy is a mutable allow/deny list, safe for concurrent use.
type Policy struct {
	// Refused, if set, is called for every connection the policy blocks.
	// It must be quick; it runs on libp2p's dial and accept paths.
	Refused func(p peer.ID, dir network.Direction)

	mu    sync.RWMutex
	allow map[peer.ID]struct{}
	deny  map[peer.ID]struct{}
}

// New returns a policy with the given lists.
func New(allow, deny []peer.ID) *Policy {
	p := &Policy{allow: make(map[peer.ID]struct{}), deny: make(map[peer.ID]struct{})}
	for _, id := range allow {
		p.allow[id] = struct{}{}
	}
	for _, id := range deny {
		p.deny[id] = struct{}{}
	}
	return p
}

// Allowed reports whether id may connect: it is not denied, and either no
// allow list is set or id is on it.
func (p *Policy) Allowed(id peer.ID) bool {
	p.mu.RLock()
	defer p.mu.RUnlock()
	if _, ok := p.deny[id]; ok {
		return false
	}
	if len(p.allow) == 0 {
		return true
	}
	_, ok := p.allow[id]
	return ok
}

// Allow puts id on the allow list and takes it off the deny list.
func (p *Policy) Allow(id peer.ID) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.deny, id)
	p.allow[id] = struct{}{}
}

// Deny puts id on the deny list and takes it off the allow list.
func (p *Policy) Deny(id peer.ID) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.allow, id)
	p.deny[id] = struct{}{}
}

// Revoke takes id off both lists. It reports whether id was on either.
func (p *Policy) Revoke(id peer.ID) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	_, a := p.allow[id]
	_, d := p.deny[id]
	delete(p.allow, id)
	delete(p.deny, id)
	return a || d
}

// Lists returns both lists, sorted.
func (p *Policy) Lists() (allow, deny []peer.ID) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	for id := range p.allow {
		allow = append(allow, id)
	}
	for id := range p.deny {
		deny = append(deny, id)
	}
	slices.Sort(allow)
	slices.Sort(deny)
	return allow, deny
}

func (p *Policy) check(id peer.ID, dir network.Direction) bool {
	if p.Allowed(id) {
		return true
	}
	if p.Refused != nil {
		p.Refused(id, dir)
	}
	return false
}

// InterceptPeerDial refuses to dial a peer the policy disallows.
func (p *Policy) InterceptPeerDial(id peer.ID) bool { return p.check(id, network.DirOutbound) }

// InterceptAddrDial refuses to dial any address of a disallowed peer.
func (p *Policy) InterceptAddrDial(id peer.ID, _ ma.Multiaddr) bool {
	return p.Allowed(id) // InterceptPeerDial already reported it
}

// InterceptAccept accepts every inbound connection: the peer is not known
// until the security handshake, checked in InterceptSecured.
func (p *Policy) InterceptAccept(network.ConnMultiaddrs) bool { return true }

// InterceptSecured drops an outbound connection once the handshake has
// authenticated a disallowed peer. Inbound connections go on to
// InterceptUpgraded, which refuses them with a code the peer can read.
func (p *Policy) InterceptSecured(dir network.Direction, id peer.ID, _ network.ConnMultiaddrs) bool {
	if dir == network.DirInbound {
		return true
	}
	return p.check(id, dir)
}

// InterceptUpgraded refuses an inbound connection from a disallowed peer.
// The swarm calls it before the connection serves any stream and closes a
// refused one with libp2p's ConnGated code, so a p2ptun peer learns that
// the policy refused it rather than seeing a connection that came up and
// dropped (kubo sees a plain close). It checks every connection, whatever
// its direction: outbound ones to a disallowed peer never get this far.
func (p *Policy) InterceptUpgraded(c network.Conn) (bool, control.DisconnectReason) {
	return p.check(c.RemotePeer(), c.Stat().Direction), 0
}

// Reset replaces both lists.
func (p *Policy) Reset(allow, deny []peer.ID) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.allow = make(map[peer.ID]struct{}, len(allow))
	p.deny = make(map[peer.ID]struct{}, len(deny))
	for _, id := range allow {
		p.allow[id] = struct{}{}
	}
	for _, id := range deny {
		p.deny[id] = struct{}{}
	}
}
