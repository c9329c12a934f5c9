package server

import (
	"fmt"
	"net/http"

	"github.com/p2ptun/p2ptun/api"
	"github.com/p2ptun/p2ptun/node"
)

// SetReady marks the daemon ready, for GET /v0/status.
func (s *Server) SetReady() { s.ready.Store(true) }

func (s *Server) tunnelRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /v0/status", func(w http.ResponseWriter, r *http.Request) {
		reply(w, api.Status{Ready: s.ready.Load(), Tunnels: api.TunnelStatusesFrom(s.node.Tunnels())}, nil)
	})
	mux.HandleFunc("GET /v0/overview", func(w http.ResponseWriter, r *http.Request) {
		n := s.node
		reply(w, api.OverviewFrom(s.ready.Load(), n.Tunnels(), n.Listeners(), n.Streams(), n.Peers()).Named(s.aliases()), nil)
	})
	mux.HandleFunc("POST /v0/reload", func(w http.ResponseWriter, r *http.Request) {
		if s.Reload == nil {
			reply(w, nil, fmt.Errorf("%w: this daemon has no config file to reload (it is --ephemeral)", node.ErrUsage))
			return
		}
		out, err := s.Reload(r.Context())
		reply(w, api.ReloadResultFrom(out), err)
	})
}
