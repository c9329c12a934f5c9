package api

import (
	"context"
	"net/http"
)

// Access returns the daemon's node-wide access policy.
func (c *Client) Access(ctx context.Context) (AccessList, error) {
	return call[AccessList](ctx, c, http.MethodGet, "/v0/access", nil)
}

// EditAccess applies verb ("allow", "deny" or "revoke") to peer and
// returns the resulting policy.
func (c *Client) EditAccess(ctx context.Context, verb, peer string) (AccessList, error) {
	return call[AccessList](ctx, c, http.MethodPost, "/v0/access/"+verb, AccessRequest{Peer: peer})
}
