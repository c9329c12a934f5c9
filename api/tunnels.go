package api

import (
	"context"
	"net/http"

	"github.com/p2ptun/p2ptun/node"
)

// ReloadReply is what a daemon's Reload hook returns: the node's account
// of what the reload changed, and the config sections that changed but
// apply only when the daemon restarts (network, limits, ...). The server
// sends it as a ReloadResult.
type ReloadReply struct {
	node.ApplyResult
	NeedsRestart []string
}

// Status returns the daemon's readiness and its config tunnels' states.
func (c *Client) Status(ctx context.Context) (Status, error) {
	return call[Status](ctx, c, http.MethodGet, "/v0/status", nil)
}

// Reload asks the daemon to re-read its config file and apply it.
func (c *Client) Reload(ctx context.Context) (ReloadResult, error) {
	return call[ReloadResult](ctx, c, http.MethodPost, "/v0/reload", nil)
}
