package api

import (
	"context"
	"fmt"
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

// SetReady marks the daemon ready, for GET /v0/status.
func (s *Server) SetReady() { s.ready.Store(true) }

func (s *Server) tunnelRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /v0/status", func(w http.ResponseWriter, r *http.Request) {
		reply(w, Status{Ready: s.ready.Load(), Tunnels: tunnelStatusesFrom(s.node.Tunnels())}, nil)
	})
	mux.HandleFunc("POST /v0/reload", func(w http.ResponseWriter, r *http.Request) {
		if s.Reload == nil {
			reply(w, nil, fmt.Errorf("%w: this daemon has no config file to reload (it is --ephemeral)", node.ErrUsage))
			return
		}
		out, err := s.Reload(r.Context())
		reply(w, reloadResultFrom(out), err)
	})
}

// Status returns the daemon's readiness and its config tunnels' states.
func (c *Client) Status(ctx context.Context) (Status, error) {
	var out Status
	return out, c.do(ctx, http.MethodGet, "/v0/status", nil, &out)
}

// Reload asks the daemon to re-read its config file and apply it.
func (c *Client) Reload(ctx context.Context) (ReloadResult, error) {
	var out ReloadResult
	return out, c.do(ctx, http.MethodPost, "/v0/reload", nil, &out)
}
