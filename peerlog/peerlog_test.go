package peerlog

import (
	"bytes"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"
)

type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func TestOncePerKeyPerInterval(t *testing.T) {
	var buf bytes.Buffer
	c := &clock{time.Unix(1000, 0)}
	l := New(slog.New(slog.NewTextHandler(&buf, nil)), time.Minute, c.now)

	for range 1000 {
		l.Warn("peerA refused", "refused", "peer", "A")
	}
	l.Warn("peerB refused", "refused", "peer", "B")
	if got := strings.Count(buf.String(), "msg=refused"); got != 2 {
		t.Fatalf("logged %d lines for 1001 events of 2 keys, want 2:\n%s", got, buf.String())
	}
	c.t = c.t.Add(time.Minute)
	if !l.Warn("peerA refused", "refused", "peer", "A") {
		t.Fatal("not logged after the interval passed")
	}
	if !strings.Contains(buf.String(), "suppressed=999") {
		t.Fatalf("the line after the interval should count the 999 suppressed events:\n%s", buf.String())
	}
}

func TestKeysAreBounded(t *testing.T) {
	c := &clock{time.Unix(1000, 0)}
	var buf bytes.Buffer
	l := New(slog.New(slog.NewTextHandler(&buf, nil)), time.Second, c.now)
	for i := range 3 * maxKeys {
		if i%maxKeys == 0 {
			c.t = c.t.Add(time.Second)
		}
		l.Warn(fmt.Sprint(i), "x")
	}
	if n := len(l.keys); n > maxKeys {
		t.Fatalf("%d keys held, want at most %d", n, maxKeys)
	}
}

// TestInfoIsThrottledAtInfo: Info logs at Info level, once per key and
// interval, like Warn.
func TestInfoIsThrottledAtInfo(t *testing.T) {
	var buf bytes.Buffer
	c := &clock{time.Unix(1000, 0)}
	l := New(slog.New(slog.NewTextHandler(&buf, nil)), time.Minute, c.now)
	for range 3 {
		l.Info("A dest", "connected", "peer", "A")
	}
	if got := buf.String(); strings.Count(got, "level=INFO msg=connected") != 1 {
		t.Fatalf("3 Info calls of one key logged:\n%s", got)
	}
}
