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
	poll(t, exited, within, what, cond, func() string { return "\n" + str(logs) })
}

// UntilState is Until for a cond that also describes the state it saw
// ("3 streams left"): the test's failure says the last one.
func UntilState(t testing.TB, within time.Duration, what string, cond func() (ok bool, state string)) {
	t.Helper()
	var last string
	poll(t, nil, within, what, func() (ok bool) {
		ok, last = cond()
		return ok
	}, func() string { return " " + last })
}

// poll is the loop of Until and its kin: it fails the test, with what
// detail says, once within has passed or as soon as exited is closed.
func poll(t testing.TB, exited <-chan struct{}, within time.Duration, what string, cond func() bool, detail func() string) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		if cond() {
			return
		}
		select {
		case <-exited:
			t.Fatalf("the process exited while waiting for %s:%s", what, detail())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %s after %v:%s", what, within, detail())
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
