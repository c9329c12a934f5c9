package refusal

import (
	"errors"
	"fmt"
	"testing"

	"github.com/libp2p/go-libp2p/core/network"
)

// TestCodesRoundTrip checks that every cause's code, as a peer reads it,
// maps back to the cause and its sentinel, and that what is not one of
// p2ptun's refusals is not taken for one.
func TestCodesRoundTrip(t *testing.T) {
	seen := map[network.StreamErrorCode]Cause{}
	for _, c := range Causes() {
		code := Code(c)
		if code == 0 {
			t.Fatalf("cause %s has no code", c)
		}
		if other, dup := seen[code]; dup {
			t.Fatalf("causes %s and %s share code 0x%x", c, other, code)
		}
		seen[code] = c
		err := fmt.Errorf("reading: %w", &network.StreamError{ErrorCode: code, Remote: true})
		r := Of(err)
		if r == nil || r.Cause != c || r.Conn {
			t.Fatalf("Of(reset with 0x%x) = %+v, want cause %s", code, r, c)
		}
		if !errors.Is(r, sentinel(c)) || !errors.Is(r, network.ErrReset) {
			t.Errorf("%s: the refusal does not unwrap to its sentinel and to the reset", c)
		}
		if p := Parse(string(c)); p == nil || p.Cause != c || p.Error() != r.Error() {
			t.Errorf("Parse(%q) = %v, want the same refusal", c, p)
		}
	}
	conn := Of(&network.ConnError{ErrorCode: network.ConnGated, Remote: true})
	if conn == nil || conn.Cause != Denied || !conn.Conn || !errors.Is(conn, ErrDenied) {
		t.Errorf("Of(remote ConnGated) = %+v, want a denied connection", conn)
	}
	for _, err := range []error{
		nil,
		errors.New("eof"),
		&network.StreamError{ErrorCode: Code(Denied), Remote: false}, // our own reset
		&network.StreamError{ErrorCode: 0, Remote: true},             // kubo's plain reset
		&network.StreamError{ErrorCode: Base + 99, Remote: true},     // a code from a newer p2ptun
		&network.ConnError{ErrorCode: network.ConnGarbageCollected, Remote: true},
	} {
		if r := Of(err); r != nil {
			t.Errorf("Of(%v) = %v, want nil", err, r)
		}
	}
	if Parse("nonsense") != nil {
		t.Error("Parse accepted an unknown cause")
	}
}

// TestClosedEarlyReadsLikeTheCode checks that a refusal inferred from a
// connection closed before identify reads as the coded one does, so that
// what a user sees does not depend on which arrived.
func TestClosedEarlyReadsLikeTheCode(t *testing.T) {
	coded := Of(&network.ConnError{ErrorCode: network.ConnGated, Remote: true})
	early := ClosedEarly(errors.New("write: connection reset by peer"))
	if early.Error() != coded.Error() || early.Cause != coded.Cause || !errors.Is(early, ErrDenied) {
		t.Fatalf("ClosedEarly = %q (%s), want %q (%s)", early, early.Cause, coded, coded.Cause)
	}
}

// TestLocalIsTheCauseWithItsOwnText checks the refusing side's record of a
// refusal: the same cause and sentinel as the peer reads, the local error
// in its chain and as its text.
func TestLocalIsTheCauseWithItsOwnText(t *testing.T) {
	cause := errors.New("udp target 127.0.0.1:1: connection refused")
	err := fmt.Errorf("read: %w", Local(TargetDial, cause))
	r := Of(err)
	if r == nil || r.Cause != TargetDial || !errors.Is(err, ErrTargetDown) || !errors.Is(err, cause) {
		t.Fatalf("Of(%v) = %+v; want cause %s, ErrTargetDown and the local error in its chain", err, r, TargetDial)
	}
	if r.Error() != cause.Error() {
		t.Errorf("text %q, want the local error's %q", r.Error(), cause)
	}
}
