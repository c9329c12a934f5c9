package access

import (
	"errors"
	"slices"
	"testing"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/p2ptun/p2ptun/internal/harness"
	"github.com/p2ptun/p2ptun/registry"
	"github.com/p2ptun/p2ptun/spec"
)

func newID(t *testing.T) peer.ID {
	id, err := peer.Decode(harness.NewPeerID(t))
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// The Store edits the enforced policy and the file's lists together: the
// run-only peers are enforced but never saved, a failed save undoes the
// edit, and the node's own ID and unknown peers are refused.
func TestStoreEdits(t *testing.T) {
	self, friend, runOnly := newID(t), newID(t), newID(t)
	var saved []List
	saveErr := error(nil)
	changed := 0
	pol := New([]peer.ID{runOnly}, nil)
	s := NewStore(StoreConfig{
		Policy: pol, RunAllow: []peer.ID{runOnly}, Self: self,
		Save: func(l List) error {
			if saveErr != nil {
				return saveErr
			}
			saved = append(saved, l)
			return nil
		},
		Changed: func() { changed++ },
	})
	l, err := s.Allow(friend.String())
	if err != nil || len(l.Allow) != 2 {
		t.Fatalf("Allow = %+v, %v; want the friend beside the run-only peer", l, err)
	}
	if len(saved) != 1 || !slices.Equal(saved[0].Allow, []string{friend.String()}) || changed != 1 {
		t.Fatalf("saved %+v, changed %d times; want the friend alone saved, one change", saved, changed)
	}
	saveErr = errors.New("disk full")
	if _, err := s.Deny(friend.String()); !errors.Is(err, saveErr) {
		t.Fatalf("Deny with a failing save = %v; want its error", err)
	}
	if !pol.Allowed(friend) || changed != 1 {
		t.Fatalf("after a failed save the friend is refused (or Changed ran): the edit was not undone")
	}
	saveErr = nil
	if _, err := s.Allow(self.String()); !errors.Is(err, spec.ErrInvalid) {
		t.Errorf("Allow(self) = %v; want spec.ErrInvalid", err)
	}
	if _, err := s.Revoke(newID(t).String()); !errors.Is(err, registry.ErrNotFound) {
		t.Errorf("Revoke(a stranger) = %v; want registry.ErrNotFound", err)
	}
	s.Reset(nil, []peer.ID{friend})
	if pol.Allowed(friend) || !pol.Allowed(runOnly) || len(saved) != 1 {
		t.Errorf("after Reset: friend allowed %v, run-only peer allowed %v, %d saves; want denied, allowed, none new",
			pol.Allowed(friend), pol.Allowed(runOnly), len(saved)-1)
	}
}
