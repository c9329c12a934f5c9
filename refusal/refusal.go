package refusal

import (
	"errors"

	"github.com/libp2p/go-libp2p/core/network"
)

// Cause names why a stream or connection was refused.
type Cause string

// Causes p2ptun sends and reads.
const (
	Denied        Cause = "denied"         // not on the listener's allowlist, or refused by the node's access policy
	RateLimited   Cause = "rate_limited"   // over limits.peer_stream_rate (named_peer_stream_rate for named peers)
	TargetDial    Cause = "target_dial"    // the listener's target refused the connection or could not be reached
	TargetTimeout Cause = "target_timeout" // the listener's target did not answer within timeouts.target_dial
	Closing       Cause = "closing"        // the listener is closing: tunnel closed or daemon stopping
	StreamLimit   Cause = "stream_limit"   // the peer is over its stream limits ([limits], libp2p's code)
)

// Sentinel errors an Error unwraps to, by cause; check them with errors.Is.
var (
	// ErrDenied: the peer refuses this node (Denied).
	ErrDenied = errors.New("access denied")
	// ErrRateLimited: this node opens streams faster than the peer allows.
	ErrRateLimited = errors.New("rate limited")
	// ErrTargetDown: the peer's listener could not reach its target.
	ErrTargetDown = errors.New("the listener's target is down")
	// ErrNoListener: the peer serves no listener for the protocol now
	// (Closing; a protocol the peer never served is refused by protocol
	// negotiation instead).
	ErrNoListener = errors.New("peer has no listener for the protocol")
	// ErrBusy: the peer is over its stream limits.
	ErrBusy = errors.New("peer is over its stream limits")
)

// Base is the first of p2ptun's stream reset codes: "p2t" and a number,
// far from libp2p's own codes (0x1000 and up) and from small ones other
// applications pick.
const Base network.StreamErrorCode = 0x70327400

type entry struct {
	cause Cause
	code  network.StreamErrorCode
	err   error
	text  string // what the refused side reads: the peer …
}

// table is the wire contract; README.md's "Reset codes" lists it. Never
// renumber a code.
var table = []entry{
	{Denied, Base + 1, ErrDenied, "does not allow this node's peer ID on its listener (its --allow list)"},
	{RateLimited, Base + 2, ErrRateLimited, "rate-limited this node: it opens streams faster than the peer's limits.peer_stream_rate (named_peer_stream_rate if it names this node)"},
	{TargetDial, Base + 3, ErrTargetDown, "could not connect to its listener's target (is the service behind the tunnel running?)"},
	{TargetTimeout, Base + 4, ErrTargetDown, "timed out connecting to its listener's target (timeouts.target_dial)"},
	{Closing, Base + 5, ErrNoListener, "is closing the listener (tunnel closed or daemon stopping)"},
	{StreamLimit, network.StreamResourceLimitExceeded, ErrBusy, "is over its stream limits ([limits] streams, peer_streams)"},
}

// connDenied is the close code of a connection the node's access policy
// refuses: libp2p's own, which the swarm sends when the gater refuses an
// upgraded connection.
const connDenied = network.ConnGated

// Code returns the stream reset code for c, or 0 for an unknown cause.
func Code(c Cause) network.StreamErrorCode {
	for _, e := range table {
		if e.cause == c {
			return e.code
		}
	}
	return 0
}

// Reset resets s with c's code, so that a p2ptun peer learns why; other
// peers see a plain reset. A transport that cannot carry the code gets a
// plain reset: s is reset either way.
func Reset(s network.Stream, c Cause) error {
	if err := s.ResetWithError(Code(c)); err != nil {
		return s.Reset()
	}
	return nil
}

// Error is a refusal read from the peer: a stream it reset, or a
// connection it closed, with one of the codes above. It unwraps to its
// cause's sentinel and to the libp2p error that carried it. Local makes
// the refusal's other end: the refusing side's own record of it.
type Error struct {
	Cause Cause
	// Conn is true for a connection the peer closed (its access policy),
	// false for a stream its listener reset.
	Conn  bool
	err   error
	local bool
}

// Local is the refusing side's own record of a stream it reset with
// cause's code, for err: it is that cause (Of, errors.Is with the cause's
// sentinel), and its text is err's, what happened here, not what the peer
// reads.
func Local(c Cause, err error) *Error {
	return &Error{Cause: c, err: err, local: true}
}

// ClosedEarly is the refusal of a peer that closed a new connection before
// it identified itself, without a code the dialer could read. A p2ptun
// node closes a connection its access policy refuses with a code, sent
// best effort: when the dialer's first bytes reach a socket the peer has
// closed, its kernel answers with a TCP reset, which can overtake the
// code. Nothing else closes a connection at that moment but a peer's
// connection gater (or, rarely, its connection limits), so this is
// reported as the same refusal (Denied), with the same text, so that what
// a user sees does not depend on that race. err is how the connection
// ended.
func ClosedEarly(err error) *Error {
	return &Error{Cause: Denied, Conn: true, err: err}
}

func (e *Error) Error() string {
	if e.local && e.err != nil {
		return e.err.Error()
	}
	if e.Conn {
		return "the peer's access policy refuses this node: it closed the connection as soon as it was made"
	}
	for _, t := range table {
		if t.cause == e.Cause {
			return "the peer " + t.text
		}
	}
	return "the peer refused the stream (" + string(e.Cause) + ")"
}

// Unwrap returns the cause's sentinel and the libp2p error, if any.
func (e *Error) Unwrap() []error {
	errs := []error{sentinel(e.Cause)}
	if e.err != nil {
		errs = append(errs, e.err)
	}
	return errs
}

func sentinel(c Cause) error {
	for _, t := range table {
		if t.cause == c {
			return t.err
		}
	}
	return nil
}

// Of returns the refusal that err carries, or nil: a stream the peer
// reset with one of p2ptun's codes, or a connection it closed because its
// access policy refuses this node. A reset without a code (kubo, or a
// p2ptun before codes) is not a refusal.
func Of(err error) *Error {
	if err == nil {
		return nil
	}
	var re *Error
	if errors.As(err, &re) {
		return re
	}
	var se *network.StreamError
	if errors.As(err, &se) && se.Remote {
		for _, t := range table {
			if t.code == se.ErrorCode {
				return &Error{Cause: t.cause, err: err}
			}
		}
	}
	var ce *network.ConnError
	if errors.As(err, &ce) && ce.Remote && ce.ErrorCode == connDenied {
		return &Error{Cause: Denied, Conn: true, err: err}
	}
	return nil
}

// Parse returns the refusal for a cause received as text (over the API),
// or nil if the cause is not one of this table's.
func Parse(cause string) *Error {
	c := Cause(cause)
	if sentinel(c) == nil {
		return nil
	}
	return &Error{Cause: c}
}

// Causes lists every cause, for metrics labels and docs.
func Causes() []Cause {
	out := make([]Cause, len(table))
	for i, t := range table {
		out[i] = t.cause
	}
	return out
}
