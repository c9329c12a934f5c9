package server

import (
	"context"
	"net/http"

	"github.com/p2ptun/p2ptun/api"
	"github.com/p2ptun/p2ptun/node"
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
			list, err := op(s.node, r.Context(), req.Peer)
			reply(w, api.AccessListFrom(list), err)
		})
	}
}
