package node

import (
	"context"
	"fmt"
	"slices"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/p2ptun/p2ptun/access"
	"github.com/p2ptun/p2ptun/config"
	"github.com/p2ptun/p2ptun/spec"
)

// AccessList is the node-wide policy as `p2ptun access ls` shows it.
type AccessList struct {
	Allow []string
	Deny  []string
}

// Access returns the node-wide policy.
func (n *Node) Access() AccessList {
	allow, deny := n.opts.Access.Lists()
	return AccessList{Allow: ids(allow), Deny: ids(deny)}
}

func ids(ps []peer.ID) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = p.String()
	}
	return out
}

// AccessAllow puts a peer on the allow list (and off the deny list). Once
// the allow list is not empty, only the peers on it may connect. The
// node's own ID is ErrUsage: listing it would only shut out every peer.
func (n *Node) AccessAllow(ctx context.Context, p string) (AccessList, error) {
	return n.editAccess(p, func(pol *access.Policy, id peer.ID) error {
		if err := n.notSelf("allow", id); err != nil {
			return err
		}
		pol.Allow(id)
		return nil
	})
}

// AccessDeny puts a peer on the deny list (and off the allow list) and
// closes its connections. The node's own ID is ErrUsage.
func (n *Node) AccessDeny(ctx context.Context, p string) (AccessList, error) {
	return n.editAccess(p, func(pol *access.Policy, id peer.ID) error {
		if err := n.notSelf("deny", id); err != nil {
			return err
		}
		pol.Deny(id)
		return nil
	})
}

// notSelf refuses an access edit of the node's own ID: the policy governs
// the other peers that connect to it.
func (n *Node) notSelf(verb string, id peer.ID) error {
	if id == n.host.ID() {
		return fmt.Errorf("%w: access %s %s: that is this node's own peer ID; the access policy applies to other peers (see `p2ptun access --help`)", ErrUsage, verb, id)
	}
	return nil
}

// AccessRevoke takes a peer off both lists; ErrNotFound if it was on none.
func (n *Node) AccessRevoke(ctx context.Context, p string) (AccessList, error) {
	return n.editAccess(p, func(pol *access.Policy, id peer.ID) error {
		if !pol.Revoke(id) {
			return fmt.Errorf("%w: peer %s is on neither list; see `p2ptun access ls`", ErrNotFound, id)
		}
		return nil
	})
}

// SetAccess replaces the node-wide policy with the config file's lists
// (on reload), plus the run-only peers (Options.RunAllow and RunDeny), and
// closes the connections it no longer allows. It does not save the
// policy: it came from the file.
func (n *Node) SetAccess(allow, deny []peer.ID) {
	n.accessMu.Lock()
	defer n.accessMu.Unlock()
	n.filed.Reset(allow, deny)
	n.opts.Access.Reset(slices.Concat(allow, n.opts.RunAllow), slices.Concat(deny, n.opts.RunDeny))
	n.dropRefused()
}

// editAccess applies edit to the running policy and to the file's,
// persists the file's (restoring both if that fails), then closes
// connections the policy now refuses. The run-only peers (Options.RunAllow
// and RunDeny) are in the running policy alone, so they are never saved.
func (n *Node) editAccess(p string, edit func(*access.Policy, peer.ID) error) (AccessList, error) {
	id, err := spec.ParsePeer(p)
	if err != nil {
		return AccessList{}, err
	}
	n.accessMu.Lock()
	defer n.accessMu.Unlock()
	oldAllow, oldDeny := n.opts.Access.Lists()
	if err := edit(n.opts.Access, id); err != nil {
		return AccessList{}, err
	}
	fileAllow, fileDeny := n.filed.Lists()
	_ = edit(n.filed, id) // a run-only peer is on neither of the file's lists
	cur := n.Access()
	if n.opts.SaveAccess != nil {
		allow, deny := n.filed.Lists()
		if err := n.opts.SaveAccess(config.Access{Allow: ids(allow), Deny: ids(deny)}); err != nil {
			n.opts.Access.Reset(oldAllow, oldDeny)
			n.filed.Reset(fileAllow, fileDeny)
			return AccessList{}, fmt.Errorf("saving the access policy: %w", err)
		}
	}
	n.dropRefused()
	n.log.Info("access policy changed", "allow", cur.Allow, "deny", cur.Deny)
	return cur, nil
}

// dropRefused closes the connections of peers the policy refuses, with
// the code a refused connection carries (see package access), so that a
// p2ptun peer learns why.
func (n *Node) dropRefused() {
	for _, p := range n.host.Network().Peers() {
		if !n.opts.Access.Allowed(p) {
			for _, c := range n.host.Network().ConnsToPeer(p) {
				_ = c.CloseWithError(network.ConnGated)
			}
			n.log.Info("closed connections to a peer the access policy no longer allows", "peer", p.String())
		}
	}
}
