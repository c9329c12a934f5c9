package server

import (
	"context"
	"fmt"
	"net"
	"net/http"

	"github.com/p2ptun/p2ptun/api"
	"github.com/p2ptun/p2ptun/node"
)

// refusedConn is a connection whose peer may not use the API (see
// ownerOnly). The server answers its requests 403 and runs no handler.
type refusedConn struct {
	net.Conn
	uid int // the peer's uid, -1 if unknown
}

type refusedKey struct{}

// connContext marks the context of a refused connection's requests.
func connContext(ctx context.Context, c net.Conn) context.Context {
	if rc, ok := c.(*reserveConn); ok {
		c = rc.Conn
	}
	if rc, ok := c.(*refusedConn); ok {
		return context.WithValue(ctx, refusedKey{}, rc.uid)
	}
	return ctx
}

// refuseOthers answers every request on a refused connection with
// node.ErrDenied and closes it; other requests go to next.
func refuseOthers(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		uid, refused := r.Context().Value(refusedKey{}).(int)
		if !refused {
			next.ServeHTTP(w, r)
			return
		}
		w.Header().Set("Connection", "close")
		api.WriteError(w, fmt.Errorf("%w: the p2ptun daemon refuses uid %d: run the command as the daemon's user, as root, or as a member of the group set in its config's [api] group",
			node.ErrDenied, uid))
	})
}
