package api

import (
	"context"
	"net/http"

	"github.com/p2ptun/p2ptun/node"
)

// accessRoutes serves the node-wide access policy (p2ptun access).
func (s *Server) accessRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /v0/access", func(w http.ResponseWriter, r *http.Request) {
		reply(w, accessListFrom(s.node.Access()), nil)
	})
	for verb, op := range map[string]func(*node.Node, context.Context, string) (node.AccessList, error){
		"allow":  (*node.Node).AccessAllow,
		"deny":   (*node.Node).AccessDeny,
		"revoke": (*node.Node).AccessRevoke,
	} {
		mux.HandleFunc("POST /v0/access/"+verb, func(w http.ResponseWriter, r *http.Request) {
			var req AccessRequest
			if !decode(w, r, &req) {
				return
			}
			list, err := op(s.node, r.Context(), req.Peer)
			reply(w, accessListFrom(list), err)
		})
	}
}

// Access returns the daemon's node-wide access policy.
func (c *Client) Access(ctx context.Context) (AccessList, error) {
	var out AccessList
	return out, c.do(ctx, http.MethodGet, "/v0/access", nil, &out)
}

// EditAccess applies verb ("allow", "deny" or "revoke") to peer and
// returns the resulting policy.
func (c *Client) EditAccess(ctx context.Context, verb, peer string) (AccessList, error) {
	var out AccessList
	return out, c.do(ctx, http.MethodPost, "/v0/access/"+verb, AccessRequest{Peer: peer}, &out)
}
