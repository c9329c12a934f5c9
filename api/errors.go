package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/p2ptun/p2ptun/node"
)

var (
	// ErrDaemonNotRunning is returned by the client when nothing answers on
	// the API socket.
	ErrDaemonNotRunning = errors.New("no p2ptun daemon is running")
	// ErrDaemonRunning is returned by server.Server.Start when another daemon
	// already answers on the socket.
	ErrDaemonRunning = errors.New("a p2ptun daemon is already running")
	// ErrUnsafeSocketDir is returned by server.Server.Start when the API socket's
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

// WriteError answers a failed request with err: the status and code of
// the node sentinel it wraps ("internal" and 500 for none), and its
// message. The client's replyError reads it back.
func WriteError(w http.ResponseWriter, err error) {
	body, status := errorBody{Error: err.Error(), Code: "internal"}, http.StatusInternalServerError
	for _, c := range codes {
		if errors.Is(err, c.err) {
			body.Code, status = c.code, c.status
			break
		}
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(body)
}

// replyError decodes the error body of a failed request (WriteError's).
func replyError(resp *http.Response) error {
	var eb errorBody
	if err := json.NewDecoder(io.LimitReader(resp.Body, 64<<10)).Decode(&eb); err != nil || eb.Error == "" {
		return fmt.Errorf("daemon answered %s", resp.Status)
	}
	return &Error{Code: eb.Code, Message: eb.Error}
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
