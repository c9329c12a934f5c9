package api

import (
	"errors"
	"net/http"

	"github.com/p2ptun/p2ptun/node"
)

var (
	// ErrDaemonNotRunning is returned by the client when nothing answers on
	// the API socket.
	ErrDaemonNotRunning = errors.New("no p2ptun daemon is running")
	// ErrDaemonRunning is returned by Server.Start when another daemon
	// already answers on the socket.
	ErrDaemonRunning = errors.New("a p2ptun daemon is already running")
	// ErrUnsafeSocketDir is returned by Server.Start when the API socket's
	// directory is writable by group or others, or owned by another user.
	ErrUnsafeSocketDir = errors.New("unsafe api socket directory")
)

// codes maps node sentinels to the wire codes and statuses that carry them.
var codes = []struct {
	err    error
	code   string
	status int
}{
	{node.ErrUsage, "usage", http.StatusBadRequest},
	{node.ErrNotFound, "not_found", http.StatusNotFound},
	{node.ErrExists, "exists", http.StatusConflict},
	{node.ErrAddrInUse, "addr_in_use", http.StatusConflict},
	{node.ErrUnreachable, "unreachable", http.StatusBadGateway},
	{node.ErrNoListener, "no_listener", http.StatusBadGateway},
	{node.ErrDenied, "denied", http.StatusForbidden},
	{node.ErrRateLimited, "rate_limited", http.StatusTooManyRequests},
	{node.ErrTargetDown, "target_down", http.StatusBadGateway},
	{node.ErrBusy, "busy", http.StatusServiceUnavailable},
	{node.ErrClosed, "closed", http.StatusServiceUnavailable},
	{node.ErrInvalidConfig, "config_invalid", http.StatusUnprocessableEntity},
}

func encodeError(err error) (errorBody, int) {
	for _, c := range codes {
		if errors.Is(err, c.err) {
			return errorBody{Error: err.Error(), Code: c.code}, c.status
		}
	}
	return errorBody{Error: err.Error(), Code: "internal"}, http.StatusInternalServerError
}

// Error is a failure reported by the daemon. It unwraps to the node
// sentinel its code names, if any.
type Error struct {
	Code    string
	Message string
}

func (e *Error) Error() string { return e.Message }

// Unwrap returns the node sentinel for e.Code.
func (e *Error) Unwrap() error {
	for _, c := range codes {
		if c.code == e.Code {
			return c.err
		}
	}
	return nil
}
