package server

import (
	"fmt"
	"net/http"

	"github.com/p2ptun/p2ptun/api"
	"github.com/p2ptun/p2ptun/node"
	"github.com/p2ptun/p2ptun/spec"
)

// peerRoutes serves the names of peers (p2ptun peer).
func (s *Server) peerRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /v0/peers", func(w http.ResponseWriter, r *http.Request) {
		reply(w, api.PeerNamesFrom(s.aliases()), nil)
	})
	mux.HandleFunc("POST /v0/peers", func(w http.ResponseWriter, r *http.Request) {
		var req api.PeerNameRequest
		if !decode(w, r, &req) {
			return
		}
		if s.SetPeerName == nil {
			reply(w, nil, fmt.Errorf("%w: this daemon is --ephemeral and saves no names of peers", node.ErrUsage))
			return
		}
		err := spec.CheckName(req.Name)
		if err == nil && req.Addr != "" {
			_, err = spec.ParsePeerAddr(req.Addr)
		}
		if err == nil {
			err = s.SetPeerName(r.Context(), req.Name, req.Addr)
		}
		reply(w, api.PeerNamesFrom(s.aliases()), err)
	})
}

// aliases are the names of peers the daemon resolves now.
func (s *Server) aliases() spec.Aliases {
	if s.Aliases == nil {
		return nil
	}
	return s.Aliases()
}
