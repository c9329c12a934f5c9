package harness

import (
	"fmt"
	"testing"
	"time"
)

// pollEvery is how often Until looks again.
const pollEvery = 10 * time.Millisecond

// Until polls cond until it holds, failing the test with what once within
// has passed. within is a generous bound, never the oracle: a test that
// passes does so as soon as cond holds.
func Until(t testing.TB, within time.Duration, what string, cond func() bool) {
	t.Helper()
	UntilAlive(t, nil, nil, within, what, cond)
}

// UntilAlive is Until that also fails the test, with logs, as soon as
// exited is closed: the process that should make cond true is gone.
// exited and logs may be nil.
func UntilAlive(t testing.TB, exited <-chan struct{}, logs fmt.Stringer, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		select {
		case <-exited:
			t.Fatalf("the process exited while waiting for %s:\n%s", what, str(logs))
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %s after %v:\n%s", what, within, str(logs))
		}
		time.Sleep(pollEvery)
	}
}

func str(s fmt.Stringer) string {
	if s == nil {
		return ""
	}
	return s.String()
}
