package daemon

import (
	"context"
	"fmt"
	"log/slog"
	"reflect"
	"strings"
	"sync"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/p2ptun/p2ptun/api"
	"github.com/p2ptun/p2ptun/config"
	"github.com/p2ptun/p2ptun/config/homedir"
	"github.com/p2ptun/p2ptun/node"
	"github.com/p2ptun/p2ptun/spec"
)

// reloader returns the daemon's reload: re-read the config file, and apply
// its tunnels and access lists if it is valid (the node adds the run-only
// AllowPeers/DenyPeers to them); report settings that need a
// restart. One reload runs at a time (SIGHUP and `p2ptun reload` may
// arrive together): the file read, the access lists and the tunnels of one
// file are applied before the next reload reads the file again.
func reloader(n *node.Node, boot config.Config, cfgPath string, names *names, log *slog.Logger) func(context.Context) (api.ReloadReply, error) {
	var mu sync.Mutex
	return func(ctx context.Context) (api.ReloadReply, error) {
		mu.Lock()
		defer mu.Unlock()
		// The file must be there: a missing one would mean the defaults,
		// an open access policy and no tunnels.
		// Loading it parses its tunnels: a bad one fails here.
		next, err := config.LoadFile(cfgPath)
		var allow, deny []peer.ID
		if err == nil {
			allow, err = peerIDs(next.Aliases(), next.Access.Allow)
		}
		if err == nil {
			deny, err = peerIDs(next.Aliases(), next.Access.Deny)
		}
		if err != nil {
			return api.ReloadReply{}, fmt.Errorf("%w (nothing was changed)", err)
		}
		n.SetAccess(allow, deny)
		names.set(next.Aliases())
		res, err := n.ApplyTunnels(ctx, cfgPath, next)
		if err != nil {
			return api.ReloadReply{}, err
		}
		out := api.ReloadReply{ApplyResult: res, NeedsRestart: needsRestart(boot, next)}
		n.Reloaded(res, out.NeedsRestart)
		log.Info("config reloaded", "added", len(res.Added), "removed", len(res.Removed),
			"unchanged", len(res.Unchanged), "restarted", len(res.Restarted), "failed", len(res.Failed),
			"needs_restart", strings.Join(out.NeedsRestart, ","))
		return out, nil
	}
}

// names are the daemon's names of peers: config.toml's [peers] as of the
// last start, reload or `p2ptun peer add|rm`, which the API resolves and
// shows.
type names struct {
	mu sync.Mutex
	a  spec.Aliases
}

func (n *names) get() spec.Aliases {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.a
}

func (n *names) set(a spec.Aliases) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.a = a
}

// saver returns the API's SetPeerName: the edit of the config file at
// cfgPath, then the file's names taken as the daemon's.
func (n *names) saver(cfgPath string) func(context.Context, string, string) error {
	return func(_ context.Context, name, addr string) error {
		if err := homedir.SetPeerName(cfgPath, name, addr); err != nil {
			return err
		}
		c, err := config.LoadFile(cfgPath)
		if err != nil {
			return err
		}
		n.set(c.Aliases())
		return nil
	}
}

// needsRestart names the sections that differ between the config the
// daemon started with and next, other than those a reload applies.
func needsRestart(boot, next config.Config) []string {
	var out []string
	for _, s := range []struct {
		name string
		a, b any
	}{
		{"identity", boot.Identity, next.Identity},
		{"network", boot.Network, next.Network},
		{"limits", boot.Limits, next.Limits},
		{"relay", boot.Relay, next.Relay},
		{"discovery", boot.Discovery, next.Discovery},
		{"timeouts", boot.Timeouts, next.Timeouts},
		{"metrics", boot.Metrics, next.Metrics},
		{"api", boot.API, next.API},
	} {
		if !reflect.DeepEqual(s.a, s.b) {
			out = append(out, s.name)
		}
	}
	return out
}
