package cli

import (
	"errors"

	"github.com/p2ptun/p2ptun/api"
	"github.com/p2ptun/p2ptun/config"
	"github.com/p2ptun/p2ptun/config/homedir"
	"github.com/p2ptun/p2ptun/node"
)

// Exit codes. They are part of the scripting contract and documented in
// README.md; never renumber one.
const (
	ExitOK               = 0 // success
	ExitFailure          = 1 // any failure not listed below
	ExitUsage            = 2 // bad command line: unknown flag, malformed multiaddr, peer ID or protocol
	ExitDaemonNotRunning = 3 // the command needs a daemon and none answers on the API socket
	ExitConfig           = 4 // config, key file, home or API socket directory missing, corrupt or unsafe
	ExitUnreachable      = 5 // the peer cannot be reached, serves no such protocol, or its listener's target is down
	ExitConflict         = 6 // already exists: listener, port in use, running daemon, identity
	ExitNotFound         = 7 // no listener or stream matched
	ExitDenied           = 8 // this node's access policy refuses the peer, the peer refuses this node (access policy or listener allowlist), or an invite
	ExitTimeout          = 9 // a wait (`p2ptun wait --timeout`) ran out, or the daemon did not answer within --timeout
)

// ErrTimeout marks a command that gave up waiting; it exits ExitTimeout.
var ErrTimeout = errors.New("timed out")

// usageError marks errors in the command line itself.
type usageError struct{ err error }

func (u usageError) Error() string { return u.err.Error() }
func (u usageError) Unwrap() error { return u.err }

// exitCode maps an error to its documented exit code.
func exitCode(err error) int {
	var ue usageError
	switch {
	case err == nil:
		return ExitOK
	case errors.As(err, &ue), errors.Is(err, node.ErrUsage):
		return ExitUsage
	case errors.Is(err, api.ErrDaemonNotRunning):
		return ExitDaemonNotRunning
	case errors.Is(err, config.ErrInvalid), errors.Is(err, homedir.ErrKey), errors.Is(err, api.ErrUnsafeSocketDir):
		return ExitConfig
	case errors.Is(err, node.ErrUnreachable), errors.Is(err, node.ErrNoListener), errors.Is(err, node.ErrTargetDown):
		return ExitUnreachable
	case errors.Is(err, node.ErrExists), errors.Is(err, node.ErrAddrInUse),
		errors.Is(err, api.ErrDaemonRunning), errors.Is(err, homedir.ErrLocked), errors.Is(err, homedir.ErrInitialized):
		return ExitConflict
	case errors.Is(err, node.ErrNotFound):
		return ExitNotFound
	case errors.Is(err, node.ErrDenied):
		return ExitDenied
	case errors.Is(err, ErrTimeout), errors.Is(err, api.ErrNoAnswer):
		return ExitTimeout
	}
	return ExitFailure
}

func usagef(err error) error { return usageError{err} }
