package harness

import (
	"io"
	"testing"
)

// Echoes writes msg on c, an echo service's connection or stream, and
// fails the test unless the same bytes come back.
func Echoes(t testing.TB, c io.ReadWriter, msg string) {
	t.Helper()
	if _, err := io.WriteString(c, msg); err != nil {
		t.Fatalf("write: %v", err)
	}
	buf := make([]byte, len(msg))
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != msg {
		t.Fatalf("echo = %q, %v; want %q", buf, err, msg)
	}
}
