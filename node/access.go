package node

import (
	"context"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/p2ptun/p2ptun/access"
	"github.com/p2ptun/p2ptun/config"
)

// AccessList is the node-wide policy as `p2ptun access ls` shows it
// (access.List).
type AccessList = access.List

// newAccess returns the store that edits the node's policy at runtime
// and closes the connections it no longer allows.
func (n *Node) newAccess(self peer.ID) *access.Store {
	o := n.opts
	var save func(access.List) error
	if o.SaveAccess != nil {
		save = func(l access.List) error { return o.SaveAccess(config.Access{Allow: l.Allow, Deny: l.Deny}) }
	}
	return access.NewStore(access.StoreConfig{
		Policy: o.Access, Allow: o.Allow, Deny: o.Deny, RunAllow: o.RunAllow, RunDeny: o.RunDeny,
		Self: self, Save: save, Changed: n.closeRefused, Logger: n.log,
	})
}

// closeRefused closes the connections of the peers the policy refuses
// (access.Policy.CloseRefused), once the host runs.
func (n *Node) closeRefused() {
	if n.host != nil {
		n.opts.Access.CloseRefused(n.host.Network(), n.log)
	}
}

// Access returns the node-wide policy.
func (n *Node) Access() AccessList { return n.access.List() }

// AccessAllow puts a peer on the allow list (access.Store.Allow).
func (n *Node) AccessAllow(_ context.Context, p string) (AccessList, error) {
	return n.access.Allow(p)
}

// AccessDeny puts a peer on the deny list and closes its connections.
func (n *Node) AccessDeny(_ context.Context, p string) (AccessList, error) {
	return n.access.Deny(p)
}

// AccessRevoke takes a peer off both lists; ErrNotFound if it was on none.
func (n *Node) AccessRevoke(_ context.Context, p string) (AccessList, error) {
	return n.access.Revoke(p)
}

// SetAccess replaces the node-wide policy with the config file's lists
// (on reload), plus the run-only peers (Options.RunAllow and RunDeny), and
// closes the connections it no longer allows. It does not save the
// policy: it came from the file.
func (n *Node) SetAccess(allow, deny []peer.ID) { n.access.Reset(allow, deny) }

func ids(ps []peer.ID) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = p.String()
	}
	return out
}
