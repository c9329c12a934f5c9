package api

import (
	"context"
	"fmt"
	"net/http"

	"github.com/p2ptun/p2ptun/node"
)

// Status is the body of GET /v0/status: whether the daemon has finished
// starting, and the state of each config-file tunnel.
type Status struct {
	// Ready is true once the daemon has made its first attempt at every
	// config tunnel (the point at which it writes --ready-file).
	Ready   bool
	Tunnels []node.TunnelStatus
}

// Up reports whether the daemon is ready and every config tunnel is up
// (or was closed on purpose at runtime).
func (s Status) Up() bool {
	if !s.Ready {
		return false
	}
	for _, t := range s.Tunnels {
		if t.State != node.TunnelUp && t.State != node.TunnelClosed {
			return false
		}
	}
	return true
}

// ReloadReply is the body of POST /v0/reload.
type ReloadReply struct {
	node.ApplyResult
	// NeedsRestart names config sections that changed but apply only when
	// the daemon restarts (network, limits, ...).
	NeedsRestart []string `json:",omitempty"`
}

// SetReady marks the daemon ready, for GET /v0/status.
func (s *Server) SetReady() { s.ready.Store(true) }

func (s *Server) tunnelRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /v0/status", func(w http.ResponseWriter, r *http.Request) {
		reply(w, Status{Ready: s.ready.Load(), Tunnels: s.node.Tunnels()}, nil)
	})
	mux.HandleFunc("POST /v0/reload", func(w http.ResponseWriter, r *http.Request) {
		if s.Reload == nil {
			reply(w, nil, fmt.Errorf("%w: this daemon has no config file to reload (it is --ephemeral)", node.ErrUsage))
			return
		}
		out, err := s.Reload(r.Context())
		reply(w, out, err)
	})
}

// Status returns the daemon's readiness and its config tunnels' states.
func (c *Client) Status(ctx context.Context) (Status, error) {
	var out Status
	return out, c.do(ctx, http.MethodGet, "/v0/status", nil, &out)
}

// Reload asks the daemon to re-read its config file and apply it.
func (c *Client) Reload(ctx context.Context) (ReloadReply, error) {
	var out ReloadReply
	return out, c.do(ctx, http.MethodPost, "/v0/reload", nil, &out)
}
