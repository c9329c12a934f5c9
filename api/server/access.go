package server

import (
	"context"
	"errors"
	"net/http"

	"github.com/p2ptun/p2ptun/api"
	"github.com/p2ptun/p2ptun/node"
	"github.com/p2ptun/p2ptun/spec"
)

// accessRoutes serves the node-wide access policy (p2ptun access).
func (s *Server) accessRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /v0/access", func(w http.ResponseWriter, r *http.Request) {
		reply(w, api.AccessListFrom(s.node.Access()), nil)
	})
	for verb, op := range map[string]func(*node.Node, context.Context, string) (node.AccessList, error){
		"allow":  (*node.Node).AccessAllow,
		"deny":   (*node.Node).AccessDeny,
		"revoke": (*node.Node).AccessRevoke,
	} {
		mux.HandleFunc("POST /v0/access/"+verb, func(w http.ResponseWriter, r *http.Request) {
			var req api.AccessRequest
			if !decode(w, r, &req) {
				return
			}
			// A name is saved as the peer ID it names: the access
			// lists hold peer IDs.
			peer := req.Peer
			if id, err := s.aliases().Peer(req.Peer); err == nil {
				peer = id.String()
			} else if errors.Is(err, spec.ErrUnknownName) {
				reply(w, nil, err)
				return
			}
			list, err := op(s.node, r.Context(), peer)
			reply(w, api.AccessListFrom(list), err)
		})
	}
}
