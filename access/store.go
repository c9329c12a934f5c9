package access

import (
	"fmt"
	"log/slog"
	"slices"
	"sync"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/p2ptun/p2ptun/registry"
	"github.com/p2ptun/p2ptun/spec"
)

// List is the policy as `p2ptun access ls` shows it.
type List struct {
	Allow []string
	Deny  []string
}

// StoreConfig configures a Store.
type StoreConfig struct {
	// Policy is the policy the node enforces; required.
	Policy *Policy
	// Allow and Deny are the config file's lists, which edits change and
	// Save persists.
	Allow, Deny []peer.ID
	// RunAllow and RunDeny are in Policy for this run only (a daemon's
	// --allow-peer and --deny-peer): enforced like the others, never
	// saved, however the policy is edited.
	RunAllow, RunDeny []peer.ID
	// Self is the node's own peer ID, which no list may name.
	Self peer.ID
	// Save persists the file's lists after an edit; nil keeps edits in
	// memory only (an ephemeral node).
	Save func(List) error
	// Changed, if set, is called after every change, before the next one
	// can start: the node closes the connections the policy now refuses.
	Changed func()
	// Logger receives a line for every edit; default slog.Default().
	Logger *slog.Logger
}

// Store edits a node's policy at runtime: the enforced Policy together
// with the config file's lists (the Policy minus the run-only peers), one
// edit at a time, persisting the file's lists and undoing an edit whose
// save fails.
type Store struct {
	cfg   StoreConfig
	mu    sync.Mutex // serialises edits and their persistence
	filed *Policy    // the policy as the config file has it
}

// NewStore returns a Store for cfg.
func NewStore(cfg StoreConfig) *Store {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Store{cfg: cfg, filed: New(cfg.Allow, cfg.Deny)}
}

// List returns the enforced policy.
func (s *Store) List() List {
	allow, deny := s.cfg.Policy.Lists()
	return List{Allow: ids(allow), Deny: ids(deny)}
}

// Allow puts peer p on the allow list (and off the deny list). Once the
// allow list is not empty, only the peers on it may connect. The node's
// own ID, like a malformed one, is spec.ErrInvalid: listing it would only
// shut out every peer.
func (s *Store) Allow(p string) (List, error) {
	return s.edit(p, "allow", func(pol *Policy, id peer.ID) bool { pol.Allow(id); return true })
}

// Deny puts peer p on the deny list (and off the allow list); Changed
// closes its connections.
func (s *Store) Deny(p string) (List, error) {
	return s.edit(p, "deny", func(pol *Policy, id peer.ID) bool { pol.Deny(id); return true })
}

// Revoke takes peer p off both lists; registry.ErrNotFound if it was on
// none.
func (s *Store) Revoke(p string) (List, error) {
	return s.edit(p, "revoke", (*Policy).Revoke)
}

// Reset replaces the file's lists with allow and deny (a reload), and the
// enforced policy with them plus the run-only peers. It saves nothing:
// they came from the file.
func (s *Store) Reset(allow, deny []peer.ID) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.filed.Reset(allow, deny)
	s.cfg.Policy.Reset(slices.Concat(allow, s.cfg.RunAllow), slices.Concat(deny, s.cfg.RunDeny))
	s.changed()
}

// edit applies edit to the enforced policy and to the file's, persists
// the file's (restoring both if that fails), then calls Changed. edit
// reports whether it found something to change.
func (s *Store) edit(p, verb string, edit func(*Policy, peer.ID) bool) (List, error) {
	id, err := spec.ParsePeer(p)
	if err != nil {
		return List{}, err
	}
	if id == s.cfg.Self && verb != "revoke" {
		return List{}, fmt.Errorf("%w: access %s %s: that is this node's own peer ID; the access policy applies to other peers (see `p2ptun access --help`)", spec.ErrInvalid, verb, id)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	oldAllow, oldDeny := s.cfg.Policy.Lists()
	if !edit(s.cfg.Policy, id) {
		return List{}, fmt.Errorf("%w: peer %s is on neither list; see `p2ptun access ls`", registry.ErrNotFound, id)
	}
	fileAllow, fileDeny := s.filed.Lists()
	_ = edit(s.filed, id) // a run-only peer is on neither of the file's lists
	cur := s.List()
	if s.cfg.Save != nil {
		allow, deny := s.filed.Lists()
		if err := s.cfg.Save(List{Allow: ids(allow), Deny: ids(deny)}); err != nil {
			s.cfg.Policy.Reset(oldAllow, oldDeny)
			s.filed.Reset(fileAllow, fileDeny)
			return List{}, fmt.Errorf("saving the access policy: %w", err)
		}
	}
	s.changed()
	s.cfg.Logger.Info("access policy changed", "allow", cur.Allow, "deny", cur.Deny)
	return cur, nil
}

func (s *Store) changed() {
	if s.cfg.Changed != nil {
		s.cfg.Changed()
	}
}

func ids(ps []peer.ID) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = p.String()
	}
	return out
}
