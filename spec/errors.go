package spec

import (
	"errors"
	"fmt"
)

// ErrInvalid marks bad input: a malformed protocol, multiaddr, peer ID or
// peer address, or options that contradict each other. node.ErrUsage (and
// p2phost.ErrUsage) is this error.
var ErrInvalid = errors.New("invalid argument")

// Error is a spec that does not parse. It is ErrInvalid (errors.Is), and
// its text is "invalid argument: " then Reason, so that callers that put
// the error in a context of their own (a config file's line) can use the
// Reason alone.
type Error struct {
	// Reason says what is wrong and what to do, in one line.
	Reason string
	// unknown marks a PEER that has the form of a name but names no peer
	// (ErrUnknownName).
	unknown bool
}

func (e *Error) Error() string { return ErrInvalid.Error() + ": " + e.Reason }

// Is reports whether target is ErrInvalid, or ErrUnknownName for a PEER
// that names no peer.
func (e *Error) Is(target error) bool {
	return target == ErrInvalid || (e.unknown && target == ErrUnknownName)
}

// invalidf returns an *Error whose Reason is format with a.
func invalidf(format string, a ...any) error {
	return &Error{Reason: fmt.Sprintf(format, a...)}
}

// Reason returns the reason of the *Error in err's chain, or err's text if
// it has none.
func Reason(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Reason
	}
	return err.Error()
}
