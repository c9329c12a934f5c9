package cli

import (
	"context"
	"os"
)

type reloadKey struct{}

// WithReload returns a copy of ctx carrying reload: each value received on
// it asks a running daemon to reload. main sends SIGHUP there, so that a
// SIGHUP (systemctl reload, a closed terminal) never kills the daemon.
func WithReload(ctx context.Context, reload <-chan os.Signal) context.Context {
	return context.WithValue(ctx, reloadKey{}, reload)
}

// reloadRequests returns the channel given to WithReload, or nil (which
// never delivers) if there is none.
func reloadRequests(ctx context.Context) <-chan os.Signal {
	ch, _ := ctx.Value(reloadKey{}).(<-chan os.Signal)
	return ch
}
